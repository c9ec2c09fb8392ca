"""The image's model stage copies only some of voxstack's files (so that it is rebuilt only when the models
change) and has no third-party package: what it copies must import on the standard library alone."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def models_stage_copies() -> list[str]:
    """The sources the Dockerfile's ``models`` stage copies, as written in its COPY lines."""
    stage = ROOT.joinpath("Dockerfile").read_text().split("AS models", 1)[1].split("\nFROM ", 1)[0]
    sources = []
    for line in stage.splitlines():
        if match := re.match(r"COPY (.+) /build/src/voxstack/\S*$", line):
            sources += match.group(1).split()
    return sources


def test_the_model_stage_copies_what_the_models_package_imports(tmp_path: Path) -> None:
    sources = models_stage_copies()
    assert "src/voxstack/models/" in sources, sources
    package = tmp_path / "src" / "voxstack"
    for source in sources:
        path = ROOT / source
        if path.is_dir():
            shutil.copytree(path, package / path.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            package.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, package / path.name)
    # -S: no site-packages, as in that stage; -I: nothing of this checkout's environment.
    code = "import sys; sys.path.insert(0, sys.argv[1]); import voxstack.models; print(voxstack.models.MODELS)"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(tmp_path / "src")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
