"""``voxstack replay``: recorded turns again, through the running stack, and what changed.

The replaying itself is voxstack.replay's. Printed per turn: the transcript
old -> new with its word error rate, the reply as a word diff, each stage's
time, the reply audio's length. Exit status 0 when every turn was answered,
1 when one failed, 2 for recordings that cannot be used. ``pin`` and
``--check`` make and run conversation tests (voxstack.expectations).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from voxstack.cli.options import CoreUrlOption, core_url, fail, settings_from_flags
from voxstack.registry import API_KEY_ENV


def replay(
    recordings: Annotated[
        list[str] | None,
        typer.Argument(help="Recording ids or folders (default: the newest; see --last); `pin ID` pins one."),
    ] = None,
    last: Annotated[int, typer.Option("--last", "-n", min=0, help="The newest N recordings.")] = 0,
    fast: Annotated[bool, typer.Option("--fast", help="Stream the audio as fast as the core takes it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per turn, for tools.")] = False,
    folder: Annotated[
        Path | None, typer.Option("--recordings", help="Where the recordings are (default: where the core records).")
    ] = None,
    url: CoreUrlOption = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar=API_KEY_ENV, help="The core's API key (default: the first of core.api_keys, if any)."
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds a turn may take.")] = 120.0,
    check: Annotated[
        Path | None, typer.Option("--check", help="Replay the pinned conversations in this folder; fail on any broken.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="pin: the conversation's name.")] = None,
    into: Annotated[Path, typer.Option("--dir", help="pin: the folder of conversation tests.")] = Path("conversations"),
) -> None:
    """Re-run recorded turns through the running stack; print old -> new for each.

    `voxstack replay pin ID --name NAME` copies a recording into conversations/NAME with expectations to
    edit (expect.json); `voxstack replay --check conversations` replays them all and fails on any broken.
    """
    from voxstack.recordings import RecordingError, select, turn_settings
    from voxstack.replay import ReplayError, compare, run_turn

    settings = settings_from_flags()
    where = (folder or settings.recordings_dir).expanduser()
    keys = [k.get_secret_value() for k in settings.core.api_keys]
    key = api_key or (keys[0] if keys else None)
    stack = turn_settings(settings)  # what the recordings are compared with: this stack's settings
    try:
        if recordings and recordings[0] == "pin":
            pin_one(where, recordings[1:], name, into)
            return
        if check is not None:
            raise typer.Exit(check_all(check, core_url(url), fast=fast, timeout=timeout, stack=stack, api_key=key))
        chosen = select(where, recordings or (), last)
    except RecordingError as exc:
        raise fail(str(exc)) from None
    base = core_url(url)
    failed = 0
    for recording in chosen:
        try:
            now = run_turn(base, recording, fast=fast, timeout=timeout, api_key=key)
        except ReplayError as exc:
            now = {"error": str(exc)}
        now.pop("reply_audio", None)
        result = compare(recording.turn, now, recording.id, stack)
        failed += "error" in now
        typer.echo(json.dumps(result, ensure_ascii=False) if as_json else render(result))
    raise typer.Exit(1 if failed else 0)


def pin_one(folder: Path, ids: list[str], name: str | None, into: Path) -> None:
    from voxstack.expectations import pin
    from voxstack.recordings import select

    if len(ids) != 1 or not name:
        raise fail("usage: voxstack replay pin ID --name NAME [--dir conversations]")
    target = pin(select(folder, ids)[0], name, into)
    typer.echo(f"pinned as {target}: edit {target / 'expect.json'} to say what its replay must do")


def check_all(
    folder: Path, base: str, *, fast: bool, timeout: float, stack: dict[str, Any], api_key: str | None
) -> int:
    """Replay every pinned conversation under ``folder``; a line per conversation, 1 if any broke."""
    from voxstack.replay import check

    verdicts = check(folder, base, fast=fast, timeout=timeout, stack=stack, api_key=api_key)
    for verdict in verdicts:
        typer.echo(f"{'PASS' if verdict.passed else 'FAIL'}  {verdict.name}")
        for problem in verdict.problems:
            typer.echo(f"      {problem}")
        for difference in verdict.result.get("differences", ()):
            typer.echo(f"      note: {difference}")
    passed = sum(v.passed for v in verdicts)
    typer.echo(f"{passed} of {len(verdicts)} conversations pass")
    return 0 if passed == len(verdicts) else 1


def word_diff(old: str, new: str) -> str:
    """``new`` against ``old`` by words: removed words as [-...-], added ones as {+...+}."""
    a, b = old.split(), new.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out += a[i1:i2]
            continue
        if i2 > i1:
            out.append("[-" + " ".join(a[i1:i2]) + "-]")
        if j2 > j1:
            out.append("{+" + " ".join(b[j1:j2]) + "+}")
    return " ".join(out)


def render(result: dict[str, Any]) -> str:
    lines = [f"{result['id']} ({'spoken' if result['input'] == 'audio' else 'typed'})"]
    lines += [f"  differs     {d}" for d in result.get("differences", ())]
    if "error" in result:
        return "\n".join([*lines, f"  FAILED      {result['error']}"])
    said = result["transcript"]
    if result["input"] == "audio":
        same = "same" if said["old"] == said["new"] else f"{said['new']!r}"
        lines.append(f"  transcript  {said['old']!r} -> {same} (WER {said['wer']:.2f})")
    reply = result["reply"]
    lines.append(f"  reply       {'same' if reply['same'] else word_diff(reply['old'], reply['new'])}")
    timings = ", ".join(f"{s} {_seconds(t['old'])} -> {_seconds(t['new'])}" for s, t in result["timings"].items())
    lines.append(f"  timings     {timings}")
    audio = result["reply_audio_seconds"]
    lines.append(f"  reply audio {_seconds(audio['old'])} -> {_seconds(audio['new'])}")
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"
