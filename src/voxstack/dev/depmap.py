"""Which services a changed file affects, from the code itself.

Two sources, united. Statically: every module under the package is parsed
(not imported) and its module-level imports collected; a service depends on
the closure of its process's entry points (``voxstack.__main__`` and its
factory module). At run time: each service process lists the package modules
it has loaded once it serves (``voxstack.runtime.report_loaded_modules``),
which adds what it imported inside functions. Function-level imports are not
followed statically, since most of them (a command's lazy imports) never run
in a service.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

from voxstack.modgraph import imports, module_name

logger = logging.getLogger(__name__)


class DependencyMap:
    """Module graph of one package, and the services that import each file."""

    def __init__(self, source_root: Path, package: str, entry_points: Mapping[str, Iterable[str]]) -> None:
        self.source_root = source_root
        self.package = package
        self.entry_points = {name: tuple(mods) for name, mods in entry_points.items()}
        self.files: dict[str, Path] = {}
        self.graph: dict[str, set[str]] = {}
        # Each file's imports by its (mtime, size): a save parses one file again, not the package.
        self._parsed: dict[Path, tuple[tuple[int, int], set[str]]] = {}
        self.rebuild()

    def rebuild(self) -> None:
        """Parse the package again (after a save changed its imports). Files that do not parse keep their edges."""
        root = self.source_root / self.package.replace(".", "/")
        files = {module_name(p, self.source_root): p for p in root.rglob("*.py")}
        known = set(files)
        same_modules = known == set(self.files)  # else an import may now name a module that was not there
        graph = {}
        parsed = {}
        for module, path in files.items():
            try:
                stat = path.stat()
                stamp = (stat.st_mtime_ns, stat.st_size)
                cached = self._parsed.get(path)
                if cached and cached[0] == stamp and same_modules:
                    found = cached[1]
                else:
                    found = imports(path.read_bytes(), module, path.name == "__init__.py", known, str(path))
            except (SyntaxError, ValueError, OSError):
                graph[module] = self.graph.get(module, set())
                continue
            parsed[path] = (stamp, found)
            graph[module] = found
        self.files, self.graph, self._parsed = files, graph, parsed

    def closure(self, roots: Iterable[str]) -> set[str]:
        seen: set[str] = set()
        stack = [r for r in roots if r in self.graph]
        while stack:
            module = stack.pop()
            if module in seen:
                continue
            seen.add(module)
            # Importing a.b.c runs the package __init__ files a and a.b first.
            parent = module.rpartition(".")[0]
            if parent and parent in self.graph:
                stack.append(parent)
            stack.extend(self.graph.get(module, ()))
        return seen

    def services_for(self, path: Path, loaded: Mapping[str, Iterable[str]] | None = None) -> set[str]:
        """The services whose processes import ``path``; ``loaded`` = modules each process reported."""
        try:
            module = module_name(path.resolve(), self.source_root.resolve())
        except ValueError:
            return set()
        loaded = loaded or {}
        return {
            name
            for name, roots in self.entry_points.items()
            if module in self.closure(roots) or module in set(loaded.get(name, ()))
        }
