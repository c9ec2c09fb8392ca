"""TLS for gRPC between the services: server credentials for the services, channel credentials for their clients.

One place reads ``settings.tls`` so that the services, the core, the CLI and
health checks agree: with ``cert_file`` set the services serve TLS only, and
every client verifies them against ``ca_file``; with ``client_auth`` the
services also demand a client certificate signed by ``ca_file``, which the
clients present (the same ``cert_file``). Control sockets (unix, owner-only)
stay plaintext: the supervisor reaches its own instances through them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from voxstack.balancing import channel_options as balancing_options
from voxstack.balancing import grpc_target
from voxstack.config import TlsSettings
from voxstack.errors import StartupError

Options = Sequence[tuple[str, Any]]


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise StartupError(f"cannot read the TLS {what} {path}: {exc.strerror}") from None


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials | None:
    """The services' credentials; None for plaintext."""
    if not tls.enabled:
        return None
    key, cert = _read(tls.key_file, "key_file"), _read(tls.cert_file, "cert_file")
    assert key is not None and cert is not None  # enabled: both set (checked by the settings)
    return grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=_read(tls.ca_file, "ca_file") if tls.client_auth else None,
        require_client_auth=tls.client_auth,
    )


def channel_credentials(tls: TlsSettings) -> grpc.ChannelCredentials | None:
    """A client's credentials; None for plaintext."""
    if not tls.enabled:
        return None
    mine = tls.client_auth
    return grpc.ssl_channel_credentials(
        root_certificates=_read(tls.ca_file, "ca_file"),
        private_key=_read(tls.key_file, "key_file") if mine else None,
        certificate_chain=_read(tls.cert_file, "cert_file") if mine else None,
    )


def channel_options(tls: TlsSettings, options: Options = ()) -> list[tuple[str, Any]]:
    named = [("grpc.ssl_target_name_override", tls.server_name)] if tls.enabled and tls.server_name else []
    return [*options, *named]


def _target(address: str, options: Options) -> tuple[str, list[tuple[str, Any]]]:
    """gRPC's target for ``address`` and the options with its balancing (``voxstack.balancing``)."""
    return grpc_target(address), [*options, *balancing_options(address)]


def open_channel(address: str, tls: TlsSettings | None = None, options: Options = ()) -> grpc.Channel:
    """A blocking channel to ``address`` (one backend or several, see ``voxstack.balancing``): TLS when the
    settings say so."""
    address, options = _target(address, options)
    credentials = channel_credentials(tls) if tls is not None else None
    if credentials is None:
        return grpc.insecure_channel(address, options=list(options))
    assert tls is not None
    return grpc.secure_channel(address, credentials, options=channel_options(tls, options))


def open_aio_channel(
    address: str, tls: TlsSettings | None = None, options: Options = (), interceptors: Sequence[Any] = ()
) -> grpc.aio.Channel:
    """An asyncio channel to ``address`` (one backend or several): TLS when the settings say so."""
    address, options = _target(address, options)
    credentials = channel_credentials(tls) if tls is not None else None
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=list(options), interceptors=list(interceptors) or None)
    assert tls is not None
    return grpc.aio.secure_channel(
        address, credentials, options=channel_options(tls, options), interceptors=list(interceptors) or None
    )
