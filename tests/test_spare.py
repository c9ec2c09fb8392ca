"""The dev supervisor's warm spares: preload libraries, import no voxstack code, become the service on `start`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from voxstack.supervisor.process import spare_argv
from voxstack.supervisor.spare import preload

PROBE = (
    "import sys, json; from voxstack.supervisor.spare import preload; n = preload(sys.argv[1]); "
    "print(json.dumps([n, sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'voxstack', 'rich'))]))"
)


def test_preload_imports_third_party_packages_only(tmp_path: Path) -> None:
    names = tmp_path / "imports"
    listed = ["_asyncio", "json", "nonexistent_pkg.sub", "rich", "rich.console", "voxstack.config"]
    names.write_text(json.dumps(listed))
    out = subprocess.run([sys.executable, "-c", PROBE, str(names)], capture_output=True, text=True, check=True)
    imported, modules = json.loads(out.stdout)
    # rich and rich.console: json is stdlib, _asyncio private, voxstack ours, the missing package skipped
    assert imported == 2
    assert "rich.console" in modules
    # The probe itself imported voxstack.supervisor.spare, nothing else of voxstack.
    assert [m for m in modules if m.startswith("voxstack")] == [
        "voxstack",
        "voxstack.supervisor",
        "voxstack.supervisor.spare",
    ]


def test_preload_of_a_missing_list_does_nothing(tmp_path: Path) -> None:
    assert preload(str(tmp_path / "missing")) == 0


def test_a_spare_becomes_the_command_on_start_and_exits_quietly_when_discarded(tmp_path: Path) -> None:
    names = tmp_path / "imports"
    names.write_text(json.dumps(["rich"]))
    argv = spare_argv("tts", names)  # no engine: nothing of voxstack before "start"
    assert argv[1].endswith("supervisor/spare.py") and argv[-1] == "tts" and argv[3] == ""
    base = argv[:4]
    started = subprocess.run([*base, "--help"], input="start\n", capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    assert "python -m voxstack.server" in started.stdout and "SERVICE" in started.stdout.upper()
    discarded = subprocess.run([*base, "--help"], input="", capture_output=True, text=True, timeout=60)
    assert discarded.returncode == 0 and discarded.stdout == ""
