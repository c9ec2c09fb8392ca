"""API keys: every route but the health probes needs one, when keys are configured.

Keys are kept only as SHA-256 digests and compared in constant time; they are
never logged. A caller presents one as ``Authorization: Bearer KEY`` or
``X-API-Key: KEY``. Browsers cannot set headers on a WebSocket, so a caller
with a key gets a short-lived token (``POST /v1/auth/ws-token``) and opens
``/v1/stream?token=...``. Tokens are signed with a random secret: the
``ws_token_secret`` setting, else one kept in the session store (so every core
replica on a shared store accepts every replica's tokens, and a dev reload keeps
them valid). Nothing about the keys, not even their digests, helps to forge one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from pathlib import Path
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from voxstack.codes import CloseCode, ErrorCode
from voxstack.config import CoreSettings
from voxstack.core.errors import error_response
from voxstack.core.fairness import owner_var
from voxstack.errors import StartupError

#: Routes that answer without a key: orchestrators probe them.
OPEN_PATHS = frozenset({"/livez", "/healthz", "/console"})
#: Folders open to anyone: the console's page assets (no data; the page asks for a key when one is needed).
OPEN_FOLDERS = ("/console/",)
#: Where the caller's key id is kept in the request's state.
OWNER = "voxstack_owner"
#: The name of the token secret in the session store.
TOKEN_SECRET = "ws-token"
#: How far past its lifetime a token's expiry may lie (clocks of replicas differ a little).
CLOCK_SKEW_SECONDS = 30.0


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def hashed_line(key: str) -> str:
    """The line of a keys file that holds ``key``."""
    return f"sha256:{digest(key)}"


def load_digests(core: CoreSettings) -> list[str]:
    """The digests of every configured key; StartupError naming a bad line of the keys file."""
    digests = [digest(k.get_secret_value()) for k in core.api_keys if k.get_secret_value()]
    if core.api_keys_file is not None:
        try:
            lines = Path(core.api_keys_file).read_text().splitlines()
        except OSError as exc:
            raise StartupError(f"cannot read api_keys_file {core.api_keys_file}: {exc.strerror}") from None
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kind, _, value = line.partition(":")
            if kind != "sha256" or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
                raise StartupError(
                    f"{core.api_keys_file}:{number}: expected `sha256:` and 64 hex digits "
                    "(make one with `voxstack config --hash-key KEY`)"
                )
            digests.append(value)
    return digests


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def check_exposure(core: CoreSettings, prod: bool, keys: ApiKeys) -> None:
    """A prod core on a non-loopback address needs keys, or an explicit allow_anonymous."""
    if prod and not keys.enabled and not core.allow_anonymous and not is_loopback(core.host):
        raise StartupError(
            f"the core would listen on {core.host} with no API keys: set VOXSTACK_CORE__API_KEYS (or "
            "VOXSTACK_CORE__API_KEYS_FILE), bind to 127.0.0.1, or set VOXSTACK_CORE__ALLOW_ANONYMOUS=true "
            "if something in front of it authenticates"
        )


class ApiKeys:
    @classmethod
    def from_settings(cls, core: CoreSettings) -> ApiKeys:
        secret = core.ws_token_secret.get_secret_value().encode() if core.ws_token_secret else None
        return cls(load_digests(core), core.ws_token_seconds, secret)

    def __init__(self, digests: list[str], token_seconds: float, secret: bytes | None = None) -> None:
        self.digests = [bytes.fromhex(d) for d in digests]
        self.owners = frozenset(key_id(d) for d in self.digests)
        self.token_seconds = token_seconds
        #: Whether the secret came from the settings; if not, the core adopts the session store's.
        self.secret_is_set = secret is not None
        self._secret = secret or secrets.token_bytes(32)

    def adopt_secret(self, secret: bytes) -> None:
        """Sign with ``secret`` (shared through the session store) unless the settings gave one."""
        if not self.secret_is_set:
            self._secret = secret

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def owner(self, presented: str | None) -> str | None:
        """Who holds the key (a short id of its digest, safe to log), or None for no valid key."""
        if not presented:
            return None
        candidate = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        matched = False
        for known in self.digests:  # every digest compared, in constant time: no timing tells which
            matched |= hmac.compare_digest(candidate, known)
        return key_id(candidate) if matched else None

    def valid(self, presented: str | None) -> bool:
        return self.owner(presented) is not None

    def token(self, owner: str = "", now: float | None = None) -> tuple[str, float]:
        """A signed token for ``owner``'s WebSocket, and when it expires."""
        expires = (now or time.time()) + self.token_seconds
        claims = {"exp": round(expires, 3), "sub": owner}
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"{payload}.{self._sign(payload)}", expires

    def token_owner(self, token: str | None, now: float | None = None) -> str | None:
        """The owner a valid, unexpired token was issued to; None otherwise.

        Besides the signature, the claims must be ones this core would issue: an owner that is one of
        the keys, an expiry no further off than a token lives.
        """
        if not token or "." not in token or len(token) > 1024:
            return None
        payload, _, signature = token.rpartition(".")
        if not hmac.compare_digest(signature.encode("utf-8", "surrogateescape"), self._sign(payload).encode()):
            return None
        now = now or time.time()
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            owner, expires = str(claims["sub"]), float(claims["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if owner not in self.owners or not now < expires <= now + self.token_seconds + CLOCK_SKEW_SECONDS:
            return None
        return owner

    def valid_token(self, token: str | None, now: float | None = None) -> bool:
        return self.token_owner(token, now) is not None

    def _sign(self, payload: str) -> str:
        mac = hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def key_id(digest: bytes) -> str:
    return "key-" + digest.hex()[:12]


def caller(scope: Scope) -> str:
    """Who is calling: the key's id when one was presented, else the client's address."""
    owner = scope.get("state", {}).get(OWNER)
    if owner:
        return str(owner)
    client = scope.get("client")
    return f"addr-{client[0]}" if client else "addr-local"


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    return key or None


class RequireKey:
    """ASGI middleware: 401 (HTTP) or a refused handshake (WebSocket) without a valid key or token."""

    def __init__(self, app: ASGIApp, *, keys: ApiKeys, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        is_open = path in self.open_paths or path.startswith(OPEN_FOLDERS)
        if scope["type"] not in ("http", "websocket") or is_open or not self.keys.enabled:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        owner = self.keys.owner(presented_key(headers))
        if owner is None and scope["type"] == "websocket":
            token = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
            owner = self.keys.token_owner(token)
        if owner is not None:
            scope.setdefault("state", {})[OWNER] = owner  # sessions and limits belong to the key
            token = owner_var.set(owner)
            try:
                await self.app(scope, receive, send)
            finally:
                owner_var.reset(token)
        elif scope["type"] == "websocket":
            await send(
                {"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION}
            )  # before accept: the handshake gets a 403
        else:
            response = error_response(
                401, {"error": {"code": ErrorCode.UNAUTHORIZED, "message": "a valid API key is required"}}
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="voxstack"'
            await response(scope, receive, send)
