"""Settings: one model fed by defaults, a .env file, the environment and CLI flags.

Precedence, lowest first: built-in defaults (some depend on ``mode``), ``.env``,
environment variables (``VOXSTACK_`` prefix, ``__`` between nested sections,
e.g. ``VOXSTACK_ASR__PORT``), then keyword overrides such as CLI flags.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from voxstack.config.core import CoreSettings
from voxstack.config.services import (
    AsrSettings,
    GrpcServiceSettings,
    LlmSettings,
    MiB,
    ServiceSettings,
    TlsSettings,
    TtsSettings,
)
from voxstack.config.wyoming import WyomingSettings
from voxstack.models import DEFAULT_PRESET, LLM_PRESETS, default_models_dir
from voxstack.registry import is_setting_name
from voxstack.runstate import default_state_dir

__all__ = [
    "ENV_NESTED_DELIMITER",
    "ENV_PREFIX",
    "MODE_DEFAULTS",
    "AsrSettings",
    "CoreSettings",
    "GrpcServiceSettings",
    "LlmSettings",
    "LogFormat",
    "MiB",
    "Mode",
    "ServiceSettings",
    "Settings",
    "SettingsError",
    "TlsSettings",
    "TtsSettings",
    "WyomingSettings",
    "env_name",
    "load_settings",
    "state_dir_setting",
]

ENV_PREFIX = "VOXSTACK_"
ENV_NESTED_DELIMITER = "__"


class Mode(str, Enum):
    DEV = "dev"
    PROD = "prod"


class LogFormat(str, Enum):
    JSON = "json"
    CONSOLE = "console"


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# Defaults that follow the mode; each can still be set on its own.
MODE_DEFAULTS: MappingProxyType[Mode, MappingProxyType[str, Any]] = MappingProxyType(
    {
        Mode.PROD: MappingProxyType(
            {
                "log_level": "INFO",
                "log_format": LogFormat.JSON,
                "error_detail": False,
                "traceback_locals": False,
                "health_interval": 30.0,
                "reuse_port": False,
                "reflection": False,
            }
        ),
        Mode.DEV: MappingProxyType(
            {
                "log_level": "DEBUG",
                "log_format": LogFormat.CONSOLE,
                "error_detail": True,
                "traceback_locals": True,
                "health_interval": 15.0,
                "reflection": True,
                # The dev supervisor starts a new instance beside the old one.
                "reuse_port": True,
            }
        ),
    }
)


class Settings(BaseSettings):
    """Everything configurable. Fields set to mode-dependent defaults are resolved on load."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        validate_default=True,
    )

    mode: Mode = Field(Mode.PROD, description="dev or prod: chooses the defaults below.")
    log_level: LogLevel = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    log_format: LogFormat = Field(LogFormat.JSON, description="json (one object a line) or console.")
    error_detail: bool = Field(False, description="Send tracebacks to callers in error details.")
    traceback_locals: bool = Field(False, description="Show local variables in logged tracebacks.")
    health_interval: float = Field(30.0, gt=0, le=3600, description="Seconds between health checks.")
    reuse_port: bool = Field(False, description="Let a second server bind the same port (SO_REUSEPORT).")
    reflection: bool = Field(
        False, description="Serve gRPC server reflection (what grpcurl lists); it tells callers the whole API."
    )
    supervisor_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="HTTP port on 127.0.0.1 serving the supervisor's Prometheus metrics (reloads, restarts) "
        "under `voxstack up`/`dev`; 0 = none.",
    )
    grace_period: float = Field(10.0, ge=0, le=3600, description="Seconds in-flight calls get to finish at shutdown.")
    restart_backoff: float = Field(
        0.5,
        gt=0,
        le=30,
        description="voxstack up/dev: seconds before a crashed service is started again; each further crash in "
        "a row doubles it, up to 30 s.",
    )
    spare_engines: bool = Field(
        True,
        description="voxstack dev: each model service's warm spare also loads its model (a second copy in memory), "
        "so that a reload that leaves the engine's code alone loads nothing. "
        "False: spares import libraries and code only.",
    )
    models_dir: Path = Field(
        default_factory=default_models_dir, description="Where `voxstack models pull` puts models."
    )
    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Run-state record, lock, control sockets and logs of `voxstack up`/`dev`.",
    )
    asr: AsrSettings = AsrSettings()
    llm: LlmSettings = LlmSettings()
    tts: TtsSettings = TtsSettings()
    core: CoreSettings = CoreSettings()
    tls: TlsSettings = TlsSettings()
    wyoming: WyomingSettings = WyomingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _OursOnly(settings_cls), file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _fill_mode_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        try:
            mode = Mode(_normalise_mode(data.get("mode", Mode.PROD)))
        except ValueError:
            return data  # the field validator reports the bad mode
        return {**MODE_DEFAULTS[mode], **{k: v for k, v in data.items() if v is not None}}

    @model_validator(mode="before")
    @classmethod
    def _fill_preset_defaults(cls, data: Any) -> Any:
        """Core settings the user did not give that depend on the llm's model come from its preset (an unknown
        preset fails its own field)."""
        if not isinstance(data, dict):
            return data
        llm, core = data.get("llm") or {}, data.get("core") or {}
        if not isinstance(llm, dict) or not isinstance(core, dict):
            return data  # sections given as models: their own values stand
        preset = LLM_PRESETS.get(llm.get("preset", DEFAULT_PRESET))
        return {**data, "core": {**preset.core_settings(), **core}} if preset is not None else data

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_any_case(cls, value: Any) -> Any:
        return _normalise_mode(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def backend_address(self, name: str) -> str:
        """Where the core reaches a model service: core.NAME_address, else that service's own address."""
        explicit = getattr(self.core, f"{name}_address")
        if explicit:
            return explicit
        return self.service(name).connect_address

    @property
    def recordings_dir(self) -> Path:
        """Where the core records turns (core.recordings_dir, else recordings/ in the state directory)."""
        return (self.core.recordings_dir or self.state_dir / "recordings").expanduser()

    def service(self, name: str) -> ServiceSettings:
        """The section of one service by name (asr, llm, tts, core)."""
        section = getattr(self, name, None)
        if not isinstance(section, ServiceSettings):
            raise KeyError(name)
        return section


class _OursOnly(DotEnvSettingsSource):
    """The .env file's settings: names without our prefix belong to other tools (Compose, ...) and are left
    alone; an unknown name with it is refused under the name it was written with."""

    def __call__(self) -> dict[str, Any]:
        prefix = ENV_PREFIX.lower()
        fields = self.settings_cls.model_fields
        data = {}
        for key, value in super().__call__().items():
            if key in fields:
                data[key] = value
            elif key.lower().startswith(prefix) and is_setting_name(key):
                data[key[len(prefix) :]] = value
        return data


def _normalise_mode(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class SettingsError(ValueError):
    """Invalid settings; the message has one line per problem, ready to show."""

    def __init__(self, message: str, sections: frozenset[str] = frozenset()) -> None:
        super().__init__(message)
        #: The settings sections (asr, core, ...) or top-level settings the problems are in.
        self.sections = sections


def env_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable that sets the field at ``loc``."""
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(part).upper() for part in loc)


def format_validation_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown setting {env_name(loc)} ({dotted})")
            continue
        lines.append(f"invalid setting {env_name(loc)} ({dotted}) = {err['input']!r}: {err['msg']}")
    return "\n".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings; ``overrides`` (e.g. CLI flags) win over env and .env.

    Nested sections take dicts, e.g. ``asr={"port": 6000}``; ``None`` values are
    ignored so unset CLI flags do not mask the environment.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        sections = frozenset(str(err["loc"][0]) for err in exc.errors() if err["loc"])
        raise SettingsError(format_validation_error(exc), sections) from None


class _StateDirOnly(BaseSettings):
    """The state directory read from the same sources as Settings, everything else ignored."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore")

    state_dir: Path = Field(default_factory=default_state_dir)


def state_dir_setting() -> Path:
    """Where `voxstack up`/`dev` keep their record, even while other settings do not load (so that
    `voxstack status` and `down` still work and can show what is wrong)."""
    return _StateDirOnly().state_dir
