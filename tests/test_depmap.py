"""The dev reloader's dependency map: which services a changed file affects, kept current as files change."""

from __future__ import annotations

import os
from pathlib import Path

from voxstack.dev.depmap import DependencyMap


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def package(tmp_path: Path) -> DependencyMap:
    write(tmp_path, "pkg/__init__.py", "")
    write(tmp_path, "pkg/base.py", "X = 1\n")
    write(tmp_path, "pkg/a.py", "from pkg import base\n\ndef later():\n    import pkg.lazy\n")
    write(tmp_path, "pkg/b.py", "from .base import X\n")
    write(tmp_path, "pkg/lazy.py", "")
    return DependencyMap(tmp_path, "pkg", {"one": ["pkg.a"], "two": ["pkg.b"]})


def touch(path: Path, text: str) -> None:
    """Rewrite ``path`` with a later mtime even on coarse clocks."""
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_services_follow_module_level_imports_and_what_processes_reported(tmp_path: Path) -> None:
    deps = package(tmp_path)
    assert deps.services_for(tmp_path / "pkg/base.py") == {"one", "two"}
    assert deps.services_for(tmp_path / "pkg/a.py") == {"one"}
    assert deps.services_for(tmp_path / "pkg/__init__.py") == {"one", "two"}  # runs before any submodule
    # An import inside a function is not followed statically; a process that ran it says so.
    assert deps.services_for(tmp_path / "pkg/lazy.py") == set()
    assert deps.services_for(tmp_path / "pkg/lazy.py", {"one": ["pkg.lazy"]}) == {"one"}
    assert deps.services_for(tmp_path.parent / "elsewhere.py") == set()


def test_a_rebuild_sees_changed_imports_and_new_modules(tmp_path: Path) -> None:
    deps = package(tmp_path)
    touch(tmp_path / "pkg/b.py", "X = 2\n")  # b no longer imports base
    deps.rebuild()
    assert deps.services_for(tmp_path / "pkg/base.py") == {"one"}
    # b imports a module that does not exist yet, then it is created: the edge appears with it.
    touch(tmp_path / "pkg/b.py", "import pkg.extra\n")
    deps.rebuild()
    assert deps.services_for(tmp_path / "pkg/b.py") == {"two"}
    write(tmp_path, "pkg/extra.py", "")
    deps.rebuild()
    assert deps.services_for(tmp_path / "pkg/extra.py") == {"two"}


def test_a_file_that_does_not_parse_keeps_its_edges(tmp_path: Path) -> None:
    deps = package(tmp_path)
    touch(tmp_path / "pkg/b.py", "from .base import (\n")  # a save in the middle of an edit
    deps.rebuild()
    assert deps.services_for(tmp_path / "pkg/base.py") == {"one", "two"}
