"""The script a fake service follows: a JSON file a test writes, read again at every call.

A test starts the fakes once (module- or session-scoped) and rewrites the
script before each case, so one set of processes serves many scripts. The
file's path is in ``SCRIPT_ENV``; a missing file or section means the
defaults below. Shape (every key optional)::

    {
      "asr": {
        "utterances": [{"text": "...", "partials": ["..."], "speculative": ["at pause 1", "..."],
                        "final_delay": 0.05, "error": {...}}],
        "end_silence": 0.3, "speculative_after": 0.1, "level": 0.01,
        "recognize": {"text": "...", "delay": 0.0, "error": {...}},
        "die_after_utterances": null
      },
      "llm": {
        "replies": [{"match": "regex", "text": "...", "tokens": ["..."], "error": {...},
                     "first_token_delay": 0.0, "token_delay": 0.0, "die_after_tokens": null}],
        "default": {"text": "..."}
      },
      "tts": {"seconds_per_char": 0.02, "rate": 22050, "delay": 0.0, "chunk_delay": 0.0,
              "error": {...}, "die_after_chunks": null, "voices": ["fake-voice"]}
    }

An ``error`` is ``{"kind": "InvalidInput" | "TooLarge" | "Busy" | "NotReady" | ...,
"message": "...", "reason": "..."}``: one of ``voxstack.errors``' typed errors,
which the real interceptor turns into its gRPC status. ``die_after_*`` ends
the process abruptly (``os._exit``) at that point, as a crash would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from voxstack import errors

#: The environment variable holding the script's path (not a VOXSTACK_ setting: settings forbid unknown names).
SCRIPT_ENV = "VOXFAKE_SCRIPT"


def read_section(name: str) -> dict[str, Any]:
    """The script's section for service ``name`` ({} when there is no script, or no such section)."""
    path = os.environ.get(SCRIPT_ENV)
    if not path:
        return {}
    try:
        script = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}
    section = script.get(name, {})
    if not isinstance(section, dict):
        raise ValueError(f"fake script section {name!r} must be an object")
    return section


def scripted_error(spec: dict[str, Any] | None) -> errors.VoxError | None:
    """The typed error a script entry asks for, or None."""
    if not spec:
        return None
    kind = getattr(errors, str(spec.get("kind", "InternalError")), None)
    if not (isinstance(kind, type) and issubclass(kind, errors.VoxError)):
        raise ValueError(f"fake script error kind {spec.get('kind')!r} is not a voxstack.errors.VoxError")
    return kind(str(spec.get("message", "scripted failure")), reason=spec.get("reason"))


def die() -> None:
    """End this process at once, as a crash would: no cleanup, no goodbye to callers."""
    os._exit(70)


class Script:
    """Writes the script file the fakes read; ``update`` replaces sections, ``clear`` removes them all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clear()

    @property
    def env(self) -> dict[str, str]:
        return {SCRIPT_ENV: str(self.path)}

    def clear(self) -> None:
        """No sections (every fake follows its defaults), and no calls recorded."""
        self._write({})
        self.path.with_suffix(".calls.jsonl").unlink(missing_ok=True)

    def calls(self, service: str | None = None) -> list[dict[str, Any]]:
        """The requests the fakes got since the last ``clear`` (of one service, when named)."""
        path = self.path.with_suffix(".calls.jsonl")
        lines = path.read_text().splitlines() if path.exists() else []
        found = [json.loads(line) for line in lines if line.strip()]
        return [c for c in found if service is None or c["service"] == service]

    def update(self, **sections: dict[str, Any]) -> None:
        current = json.loads(self.path.read_text()) if self.path.exists() else {}
        self._write({**current, **sections})

    def _write(self, data: dict[str, Any]) -> None:
        # A reader never sees a half-written file: write aside, then rename over.
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)


def calls_path() -> Path | None:
    """Where the fakes append the requests they got: beside the script."""
    path = os.environ.get(SCRIPT_ENV)
    return Path(path).with_suffix(".calls.jsonl") if path else None


def record_call(service: str, method: str, request: dict[str, Any]) -> None:
    """Append one request to the calls file (one JSON object a line; nothing without a script)."""
    path = calls_path()
    if path is not None:
        with path.open("a") as out:
            out.write(json.dumps({"service": service, "method": method, "request": request}) + "\n")
