"""voxstack.testing.edits: a test's own block at the end of a module, replaced on each save."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from voxstack import protogen
from voxstack.testing.edits import (
    ENGINE_MARKER_TAILS,
    MARKER_TAILS,
    TAIL_MARK,
    clear_tail,
    set_marker,
    set_tail,
)

PACKAGE = protogen.PROJECT_ROOT / "src" / "voxstack"


def test_a_tail_replaces_the_previous_one_and_leaves_the_module_as_it_was(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("X = 1\n")
    set_tail(module, "Y = 2\n")
    set_tail(module, "Y = 3\n")
    assert module.read_text() == "X = 1\n" + TAIL_MARK + "Y = 3\n"
    clear_tail(module)
    assert module.read_text() == "X = 1\n"


@pytest.mark.parametrize(
    ("tails", "service"),
    [("service", s) for s in sorted(MARKER_TAILS)] + [("engine", s) for s in sorted(ENGINE_MARKER_TAILS)],
)
def test_each_marker_block_compiles_with_its_module(tmp_path: Path, tails: str, service: str) -> None:
    chosen = MARKER_TAILS if tails == "service" else ENGINE_MARKER_TAILS
    relative, _ = chosen[service]
    copy = tmp_path / "voxstack"
    (copy / relative).parent.mkdir(parents=True)
    shutil.copy(PACKAGE / relative, copy / relative)
    path = set_marker(copy, service, "v7", chosen)
    text = path.read_text()
    assert text.startswith((PACKAGE / relative).read_text()) and "v7" in text.split(TAIL_MARK)[1]
    compile(text, str(path), "exec")
