"""Conversation tests: a pinned recording and what its replay must still do, in ``expect.json``.

``voxstack replay pin ID --name NAME`` copies a recording into a folder meant
to be committed (``conversations/NAME/``) with expectations a person edits;
``voxstack replay --check DIR`` replays every pinned turn under DIR and
checks them. An expectation left empty (null, []) checks nothing::

    {
      "transcript": {"text": "What is the capital of France?", "max_wer": 0.15},
      "reply": {"contains": ["Paris"], "matches": null, "equals": null},
      "max_seconds": {"first_audio": null, "total": null}
    }

``contains`` ignores case; ``matches`` is a regular expression searched in
the reply (case ignored); ``equals`` compares the words.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voxstack.recordings import Recording, RecordingError

EXPECT_FILE = "expect.json"
DEFAULT_MAX_WER = 0.15
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def pin(recording: Recording, name: str, folder: Path) -> Path:
    """Copy ``recording`` to ``folder/name`` with expectations taken from it; the new folder."""
    if not _NAME.fullmatch(name):
        raise RecordingError(f"{name!r} is not a conversation name: 1-64 of A-Za-z0-9_.- (a letter or digit first)")
    target = folder / name
    if target.exists():
        raise RecordingError(f"{target}: exists already (choose another --name, or remove it)")
    shutil.copytree(recording.path, target)
    turn = recording.turn
    expect: dict[str, Any] = {
        "transcript": {"text": turn["transcript"], "max_wer": DEFAULT_MAX_WER} if recording.spoken else None,
        "reply": {"contains": [], "matches": None, "equals": None},
        "max_seconds": {"first_audio": None, "total": None},
    }
    (target / EXPECT_FILE).write_text(json.dumps(expect, indent=2) + "\n")
    return target


def pinned(folder: Path) -> list[Path]:
    """The pinned conversations under ``folder`` (folders holding an expect.json), by name."""
    if not folder.is_dir():
        raise RecordingError(f"{folder}: no such folder of conversation tests")
    found = sorted(p.parent for p in folder.glob(f"*/{EXPECT_FILE}"))
    if not found:
        raise RecordingError(f"{folder}: no pinned conversations (voxstack replay pin ID --name NAME)")
    return found


def load_expect(path: Path) -> dict[str, Any]:
    file = path / EXPECT_FILE
    try:
        expect = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise RecordingError(f"{file}: not readable JSON ({exc})") from None
    if not isinstance(expect, dict) or set(expect) - {"transcript", "reply", "max_seconds"}:
        raise RecordingError(f"{file}: expected an object with transcript, reply and max_seconds")
    return expect


def broken(expect: dict[str, Any], now: dict[str, Any], wer: Callable[[str, str], float]) -> list[str]:
    """The expectations the replayed turn ``now`` does not meet, each said in a line."""
    if "error" in now:
        return [f"the turn failed: {now['error']}"]
    problems = []
    said = expect.get("transcript") or {}
    if said.get("text") is not None:
        rate = wer(said["text"], now["transcript"])
        if rate > float(said.get("max_wer", DEFAULT_MAX_WER)):
            problems.append(
                f"transcript {now['transcript']!r}: WER {rate:.2f} against {said['text']!r} "
                f"(at most {said.get('max_wer', DEFAULT_MAX_WER)})"
            )
    reply = expect.get("reply") or {}
    text = now["reply"]
    missing = [w for w in reply.get("contains") or [] if w.lower() not in text.lower()]
    if missing:
        problems.append(f"reply {text!r} lacks {', '.join(repr(w) for w in missing)}")
    if reply.get("matches") and not re.search(reply["matches"], text, re.IGNORECASE):
        problems.append(f"reply {text!r} does not match /{reply['matches']}/")
    if reply.get("equals") is not None and reply["equals"].split() != text.split():
        problems.append(f"reply {text!r} is not {reply['equals']!r}")
    for stage, limit in (expect.get("max_seconds") or {}).items():
        took = now["timings"].get(stage)
        if limit is not None and took is not None and took > float(limit):
            problems.append(f"{stage} took {took:.2f} s (at most {limit} s)")
    return problems
