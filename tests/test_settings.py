from __future__ import annotations

import logging
from pathlib import Path

import pytest

from voxstack.config import LogFormat, Mode, SettingsError, load_settings

pytestmark = pytest.mark.usefixtures("clean_env")


def test_prod_is_the_default_mode_with_prod_defaults() -> None:
    s = load_settings()
    assert s.mode is Mode.PROD
    assert (s.log_level, s.log_format, s.error_detail, s.traceback_locals) == (
        "INFO",
        LogFormat.JSON,
        False,
        False,
    )
    assert s.health_interval == 30.0
    assert s.reuse_port is False
    assert (s.asr.port, s.llm.port, s.tts.port, s.core.port) == (50051, 50052, 50053, 8080)
    assert s.service("asr").address == "127.0.0.1:50051"


def test_dev_mode_changes_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSTACK_MODE", "DEV")
    s = load_settings()
    assert s.mode is Mode.DEV
    assert (s.log_level, s.log_format, s.error_detail, s.traceback_locals) == (
        "DEBUG",
        LogFormat.CONSOLE,
        True,
        True,
    )
    assert s.health_interval == 15.0
    assert s.reuse_port is True


def test_a_mode_default_can_be_set_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSTACK_MODE", "dev")
    monkeypatch.setenv("VOXSTACK_LOG_FORMAT", "json")
    monkeypatch.setenv("VOXSTACK_ERROR_DETAIL", "false")
    s = load_settings()
    assert s.log_format is LogFormat.JSON
    assert s.error_detail is False
    assert s.log_level == "DEBUG"  # the rest still follow the mode


def test_env_beats_dotenv_which_beats_defaults(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("VOXSTACK_ASR__PORT=6001\nVOXSTACK_TTS__PORT=6003\nVOXSTACK_MODE=dev\n")
    monkeypatch.setenv("VOXSTACK_TTS__PORT", "7003")
    s = load_settings()
    assert s.asr.port == 6001  # .env over default
    assert s.tts.port == 7003  # env over .env
    assert s.mode is Mode.DEV


def test_overrides_beat_env_and_merge_into_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSTACK_ASR__HOST", "0.0.0.0")
    monkeypatch.setenv("VOXSTACK_ASR__PORT", "6001")
    monkeypatch.setenv("VOXSTACK_MODE", "dev")
    s = load_settings(mode="prod", asr={"port": 7001}, log_level=None)
    assert s.mode is Mode.PROD
    assert s.log_format is LogFormat.JSON  # prod's default, since the mode came from the override
    assert s.asr.port == 7001
    assert s.asr.host == "0.0.0.0"  # the env value of the same section survives


def test_unknown_service_section_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        load_settings().service("nope")


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        (
            "VOXSTACK_MODE",
            "staging",
            "invalid setting VOXSTACK_MODE (mode) = 'staging': Input should be 'dev' or 'prod'",
        ),
        (
            "VOXSTACK_ASR__PORT",
            "abc",
            "invalid setting VOXSTACK_ASR__PORT (asr.port) = 'abc': Input should be a valid integer",
        ),
        (
            "VOXSTACK_TTS__PORT",
            "70000",
            "invalid setting VOXSTACK_TTS__PORT (tts.port) = '70000': Input should be less than or equal to 65535",
        ),
        (
            "VOXSTACK_LOG_LEVEL",
            "loud",
            "invalid setting VOXSTACK_LOG_LEVEL (log_level) = 'LOUD': Input should be 'DEBUG', 'INFO'",
        ),
        (
            "VOXSTACK_LOG_FORMAT",
            "xml",
            "invalid setting VOXSTACK_LOG_FORMAT (log_format) = 'xml': Input should be 'json' or 'console'",
        ),
        (
            "VOXSTACK_GRACE_PERIOD",
            "-1",
            "invalid setting VOXSTACK_GRACE_PERIOD (grace_period) = '-1': Input should be greater than or equal to 0",
        ),
        (
            "VOXSTACK_ERROR_DETAIL",
            "maybe",
            "invalid setting VOXSTACK_ERROR_DETAIL (error_detail) = 'maybe': Input should be a valid boolean",
        ),
        (
            "VOXSTACK_LLM__MAX_MESSAGE_BYTES",
            "10",
            "invalid setting VOXSTACK_LLM__MAX_MESSAGE_BYTES (llm.max_message_bytes) = '10': Input should be greater than or equal to 65536",
        ),
        (
            "VOXSTACK_CORE__TURN_WORDS_END_THRESHOLD",
            "0.05",
            "invalid setting VOXSTACK_CORE (core) = {'turn_words_threshold': 0.1, 'turn_words_end_threshold': '0.05'}: "
            "Value error, "
            "turn_words_end_threshold (0.05) is under turn_words_threshold (0.1)",
        ),
        ("VOXSTACK_ASR__PROT", "1", "unknown setting VOXSTACK_ASR__PROT (asr.prot)"),
    ],
)
def test_each_invalid_value_gives_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(expected)


def test_several_problems_give_a_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSTACK_ASR__PORT", "-5")
    with pytest.raises(SettingsError) as info:
        load_settings(mode="neither")
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("invalid setting VOXSTACK_MODE")
    assert lines[1].startswith("invalid setting VOXSTACK_ASR__PORT")


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4317"}, True),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_follows_the_standard_otel_variables(env: dict[str, str], on: bool) -> None:
    from voxstack.tracing import tracing_requested

    assert tracing_requested(env) is on


def test_an_unknown_trace_exporter_is_a_startup_error_naming_it() -> None:
    from voxstack.errors import StartupError
    from voxstack.tracing import configure_tracing

    with pytest.raises(StartupError, match="'zipkin'"):
        configure_tracing("core", "dev", {"OTEL_TRACES_EXPORTER": "zipkin"})


def test_what_each_service_reads_of_other_sections_names_real_settings() -> None:
    from voxstack.dev.settings import concerned, flat, sections
    from voxstack.registry import SERVICES

    paths = flat(load_settings())
    for spec in SERVICES.values():
        for read in spec.reads:
            assert read in sections() or read in paths, (spec.name, read)
    services = list(SERVICES)
    assert concerned(services, ["llm.system_prompt"]) == ["llm"]
    assert concerned(services, ["llm.preset"]) == ["llm", "core"]  # /v1/models names the preset's model
    assert concerned(services, ["tls.ca_file"]) == services
    assert concerned(services, ["log_level"]) == services
    assert concerned(services, ["wyoming.asr_uri"]) == ["core"]


def test_a_settings_error_says_which_sections_it_is_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("VOXSTACK_NOT_A_SETTING=1\n")  # unknown names are refused in .env only
    monkeypatch.setenv("VOXSTACK_TTS__MAX_CONCURRENCY", "lots")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert caught.value.sections == {"tts", "not_a_setting"}
    assert "VOXSTACK_TTS__MAX_CONCURRENCY" in str(caught.value)


def test_the_state_dir_is_found_while_other_settings_do_not_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from voxstack.config import state_dir_setting

    monkeypatch.setenv("VOXSTACK_TTS__MAX_CONCURRENCY", "lots")
    monkeypatch.setenv("VOXSTACK_STATE_DIR", str(tmp_path))
    assert state_dir_setting() == tmp_path


def test_other_tools_variables_in_env_are_left_alone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("COMPOSE_PROJECT_NAME=voice\nVOXSTACK_ASR__PORT=6001\n")
    assert load_settings().asr.port == 6001
    # The commands' own variables are no settings either, and no typo; a misspelt setting still is.
    (tmp_path / ".env").write_text("VOXSTACK_DEV_SPARES=false\nVOXSTACK_API_KEY=k\nVOXSTACK_ASR__PORT=6001\n")
    assert load_settings().asr.port == 6001
    (tmp_path / ".env").write_text("VOXSTACK_DEVSPARES=false\n")
    with pytest.raises(SettingsError, match="unknown setting VOXSTACK_DEVSPARES"):
        load_settings()


def test_a_renamed_setting_still_works_under_its_former_name(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("VOXSTACK_CORE__PREEMPTIVE_REPLY", "false")
    with caplog.at_level(logging.WARNING, logger="voxstack.config.core"):
        settings = load_settings(core={"preemptive_sentences": 3})
    assert settings.core.speculative_reply is False and settings.core.speculative_sentences == 3
    assert "VOXSTACK_CORE__SPECULATIVE_REPLY" in caplog.text and "core.speculative_sentences" in caplog.text
    # The new name wins where both are given.
    assert load_settings(core={"preemptive_sentences": 3, "speculative_sentences": 2}).core.speculative_sentences == 2


def test_the_llm_preset_gives_the_core_its_words_thresholds_unless_they_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each model spreads its judgements of a pause's words over its own range: the core's thresholds follow the
    preset the llm serves, and a value set for the core stands."""
    from voxstack.models import LLM_PRESETS

    for name, preset in LLM_PRESETS.items():
        core = load_settings(llm={"preset": name}).core
        assert (core.turn_words_threshold, core.turn_words_end_threshold) == (
            preset.turn_words_threshold,
            preset.turn_words_end_threshold,
        )
    assert len({p.turn_words_end_threshold for p in LLM_PRESETS.values()}) > 1  # they do differ
    monkeypatch.setenv("VOXSTACK_LLM__PRESET", "tiny")
    monkeypatch.setenv("VOXSTACK_CORE__TURN_WORDS_END_THRESHOLD", "0.4")
    core = load_settings().core
    assert (core.turn_words_threshold, core.turn_words_end_threshold) == (
        LLM_PRESETS["tiny"].turn_words_threshold,
        0.4,
    )
