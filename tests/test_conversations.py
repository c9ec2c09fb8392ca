"""The project's own conversation tests: the turns pinned in conversations/ (recorded with the real models,
the test preset, temperature 0) replayed through the real stack by `voxstack replay --check`, as a
developer's CI would run theirs."""

from __future__ import annotations

import subprocess
from pathlib import Path

from voxstack.testing.processes import child_env, voxstack_command

CONVERSATIONS = Path(__file__).resolve().parents[1] / "conversations"


def test_the_pinned_conversations_pass_on_the_real_stack(real_stack) -> None:  # type: ignore[no-untyped-def]
    command = voxstack_command("replay", "--check", str(CONVERSATIONS), "--fast", "--url", real_stack.url)
    done = subprocess.run(command, env=child_env({}), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    names = sorted(p.name for p in CONVERSATIONS.iterdir() if p.is_dir())
    assert len(names) >= 3 and all(f"PASS  {name}" in done.stdout for name in names), done.stdout
