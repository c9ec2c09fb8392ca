"""Which services a settings change concerns: what each one's process reads of the settings.

A service reads its own section, the top-level settings (mode, logging,
models_dir, ...), ``tls``, and what the registry's ``reads`` lists for it
(the core: where the model services are and what they take). A change to
any of those reloads it; a change elsewhere leaves it alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from voxstack.config import Settings, env_name
from voxstack.registry import SERVICES

#: The settings file `voxstack dev` watches (pydantic-settings reads it from the working directory).
SETTINGS_FILE = ".env"
SHARED_SECTIONS = ("tls",)
#: Settings the supervisor acts on itself (the core's listening socket is its own): a change needs a
#: restart of `voxstack dev`.
SUPERVISOR_SETTINGS = ("core.host", "core.port", "state_dir", "supervisor_metrics_port", "mode")


def sections() -> frozenset[str]:
    """The names of the settings sections (asr, core, tls, ...), as opposed to top-level settings."""
    return frozenset(n for n, f in Settings.model_fields.items() if isinstance(f.default, BaseModel))


def flat(settings: Settings) -> dict[str, Any]:
    """Every setting by its dotted path (``llm.temperature``); secrets compare by value."""
    out: dict[str, Any] = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, dict):
            out |= {f"{name}.{field}": v for field, v in value.items()}
        else:
            out[name] = value
    return out


def read_by(service: str, path: str, section_names: frozenset[str]) -> bool:
    """Whether ``service`` reads the setting at ``path`` (a dotted path, or a section's name)."""
    section = path.partition(".")[0]
    if section not in section_names or section == service or section in SHARED_SECTIONS:
        return True
    reads = SERVICES[service].reads
    return section in reads or path in reads or any(r.partition(".")[0] == path for r in reads)


def changed(old: Settings, new: Settings) -> list[str]:
    """The dotted paths of the settings that differ."""
    before, after = flat(old), flat(new)
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def concerned(services: Iterable[str], paths: Iterable[str]) -> list[str]:
    """The services among ``services`` that read any of ``paths``."""
    names = sections()
    wanted = list(paths)
    return [s for s in services if any(read_by(s, p, names) for p in wanted)]


def variables(paths: Iterable[str]) -> str:
    """The environment variables that set ``paths``, for messages."""
    return ", ".join(env_name(tuple(p.split("."))) for p in paths)


def keep_supervisor_settings(old: Settings, new: Settings) -> Settings:
    """``new``, with what the supervisor acts on itself left as in ``old``."""
    update: Mapping[str, Any] = {
        "core": new.core.model_copy(update={"host": old.core.host, "port": old.core.port}),
        **{p: getattr(old, p) for p in SUPERVISOR_SETTINGS if "." not in p},
    }
    return new.model_copy(update=dict(update))
