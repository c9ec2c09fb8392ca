"""Targets with several backends: how an address becomes a gRPC target and whether it is balanced."""

from __future__ import annotations

import json

import pytest

from voxstack.balancing import TargetError, balanced, channel_options, grpc_target
from voxstack.config import SettingsError, load_settings


@pytest.mark.parametrize(
    ("address", "target", "is_balanced"),
    [
        ("127.0.0.1:50051", "127.0.0.1:50051", False),
        ("asr:50051", "asr:50051", False),
        ("10.0.0.1:50051, 10.0.0.2:50051", "ipv4:10.0.0.1:50051,10.0.0.2:50051", True),
        ("localhost:1,127.0.0.2:2", "ipv4:127.0.0.1:1,127.0.0.2:2", True),
        ("[::1]:1,[fe80::1]:2", "ipv6:[::1]:1,[fe80::1]:2", True),
        ("dns:///asr:50051", "dns:///asr:50051", True),
        ("dns://127.0.0.1:53/asr.local:50051", "dns://127.0.0.1:53/asr.local:50051", True),
        ("ipv4:10.0.0.1:1,10.0.0.2:1", "ipv4:10.0.0.1:1,10.0.0.2:1", True),
        ("unix:/run/asr.sock", "unix:/run/asr.sock", False),
    ],
)
def test_targets(address: str, target: str, is_balanced: bool) -> None:
    assert grpc_target(address) == target
    assert balanced(address) is is_balanced


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("asr-0:50051,asr-1:50051", "dns:///NAME:PORT"),
        ("10.0.0.1:50051,[::1]:50051", "mixes IPv4 and IPv6"),
        ("10.0.0.1:50051,10.0.0.2", "is not HOST:PORT"),
        ("10.0.0.1:0,10.0.0.2:1", "is not HOST:PORT"),
        ("  ", "empty"),
    ],
)
def test_bad_lists_say_what_is_wrong(address: str, says: str) -> None:
    with pytest.raises(TargetError, match=says.replace("/", ".").replace("(", ".")):
        grpc_target(address)


def test_a_balanced_target_gets_round_robin_and_health_checking() -> None:
    assert channel_options("127.0.0.1:50051") == []
    options = dict(channel_options("dns:///tts:50051"))
    config = json.loads(options["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": ""}


def test_a_bad_backend_address_is_a_settings_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXSTACK_CORE__TTS_ADDRESS", "tts-a:1,tts-b:1")
    with pytest.raises(SettingsError, match=r"VOXSTACK_CORE__TTS_ADDRESS.*dns:///NAME:PORT"):
        load_settings()
    monkeypatch.setenv("VOXSTACK_CORE__TTS_ADDRESS", "10.0.0.1:1,10.0.0.2:1")
    assert load_settings().backend_address("tts") == "10.0.0.1:1,10.0.0.2:1"
