"""TLS (issue 15): gRPC services serving TLS, optionally mutual, and the core over HTTPS.

Certificates come from a CA the test makes (trustme). Real processes: a tts
service with TLS, a core that reaches it through TLS, and clients that are
refused when they do not speak TLS or (mutual) bring no certificate.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
import trustme

from voxstack.config import TlsSettings
from voxstack.health import check_health
from voxstack.testing.processes import ServiceProcess, free_port
from voxstack.tls import open_channel
from voxstack.v1 import tts_pb2, tts_pb2_grpc

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(paths["cert"]), append=True)
    stranger = trustme.CA()  # a CA nobody trusts
    paths["stranger_ca"] = folder / "stranger.pem"
    stranger.cert_pem.write_to_path(str(paths["stranger_ca"]))
    return paths


def _tls_env(pki: dict[str, Path], mutual: bool) -> dict[str, str]:
    return {
        "VOXSTACK_TLS__CERT_FILE": str(pki["cert"]),
        "VOXSTACK_TLS__KEY_FILE": str(pki["key"]),
        "VOXSTACK_TLS__CA_FILE": str(pki["ca"]),
        "VOXSTACK_TLS__CLIENT_AUTH": "true" if mutual else "false",
    }


def _wait_serving(tts: ServiceProcess, tls: TlsSettings, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check_health(tts.address, timeout=2, tls=tls).serving:
        assert tts.poll() is None, tts.output()[-2000:]
        assert time.monotonic() < deadline, tts.output()[-2000:]
        time.sleep(0.3)


def _voices(address: str, tls: TlsSettings | None) -> list[str]:
    with open_channel(address, tls) as channel:
        reply = tts_pb2_grpc.TtsStub(channel).ListVoices(tts_pb2.ListVoicesRequest(), timeout=10)
    return [v.name for v in reply.voices]


@pytest.fixture(scope="module", params=[False, True], ids=["tls", "mutual-tls"])
def tts(request, pki, models_dir, tmp_path_factory) -> Iterator[tuple[ServiceProcess, TlsSettings]]:
    mutual = request.param
    env = _tls_env(pki, mutual) | {"VOXSTACK_MODELS_DIR": str(models_dir)}
    log = tmp_path_factory.mktemp("tls-tts") / "tts.log"
    process = ServiceProcess("tts", mode="prod", env=env, log=log).start()
    tls = TlsSettings(cert_file=pki["cert"], key_file=pki["key"], ca_file=pki["ca"], client_auth=mutual)
    try:
        _wait_serving(process, tls)
        yield process, tls
    finally:
        process.stop()


def test_a_tls_service_answers_tls_clients_and_refuses_plaintext(tts, pki) -> None:
    process, tls = tts
    assert _voices(process.address, tls)
    assert "with TLS" in process.output()
    with pytest.raises(grpc.RpcError) as plain:
        _voices(process.address, None)
    assert plain.value.code() is grpc.StatusCode.UNAVAILABLE
    untrusting = tls.model_copy(update={"ca_file": pki["stranger_ca"]})
    with pytest.raises(grpc.RpcError) as unverified:
        _voices(process.address, untrusting)
    assert unverified.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_client_without_a_certificate_passes_one_way_tls_and_is_refused_by_mutual_tls(tts, pki) -> None:
    process, tls = tts
    anonymous = TlsSettings(cert_file=pki["cert"], key_file=pki["key"], ca_file=pki["ca"], client_auth=False)
    if not tls.client_auth:
        assert _voices(process.address, anonymous)  # trusts the server; needs no certificate of its own
        return
    with pytest.raises(grpc.RpcError) as refused:
        _voices(process.address, anonymous)  # trusts the server, shows no certificate
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert not check_health(process.address, timeout=3, tls=anonymous).serving


def test_the_core_reaches_a_tls_service_and_serves_https(tts, pki, tmp_path: Path) -> None:
    process, tls = tts
    env = _tls_env(pki, tls.client_auth) | {
        "VOXSTACK_CORE__TTS_ADDRESS": process.address,
        "VOXSTACK_CORE__ASR_ADDRESS": f"127.0.0.1:{free_port()}",
        "VOXSTACK_CORE__LLM_ADDRESS": f"127.0.0.1:{free_port()}",
        "VOXSTACK_CORE__TLS_CERT_FILE": str(pki["cert"]),
        "VOXSTACK_CORE__TLS_KEY_FILE": str(pki["key"]),
    }
    core = ServiceProcess("core", mode="prod", env=env, log=tmp_path / "core.log").start()
    try:
        verify = ssl.create_default_context(cafile=str(pki["ca"]))
        url = f"https://127.0.0.1:{core.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/livez", verify=verify, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert core.poll() is None and time.monotonic() < deadline, core.output()[-2000:]
            time.sleep(0.2)
        voices = httpx.get(f"{url}/v1/voices", verify=verify, timeout=30)
        assert voices.status_code == 200 and voices.json()["voices"], voices.text
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{core.port}/livez", timeout=5)  # no plaintext HTTP
    finally:
        core.stop()


def test_tls_settings_must_come_in_pairs() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        TlsSettings(cert_file=Path("a.pem"))
    with pytest.raises(ValidationError, match="client_auth needs"):
        TlsSettings(client_auth=True)


def test_an_unreadable_certificate_stops_the_start_with_its_name(tmp_path: Path) -> None:
    env = {
        "VOXSTACK_TLS__CERT_FILE": str(tmp_path / "missing.pem"),
        "VOXSTACK_TLS__KEY_FILE": str(tmp_path / "missing.key"),
    }
    process = ServiceProcess("tts", mode="prod", env=env, log=tmp_path / "tts.log").start()
    assert process.wait(60) != 0
    assert "missing.key" in process.output() or "missing.pem" in process.output()
