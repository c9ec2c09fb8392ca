"""Which modules of a package a module imports, read from its source (not imported).

The dev reloader uses it to know which services a saved file affects; a warm
spare uses it to know which of the modules it imported ahead must be imported
again after a save (the changed ones and every module importing them).
Only imports that run at import time count: function bodies are skipped.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path


def module_name(path: Path, source_root: Path) -> str:
    parts = list(path.relative_to(source_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _module_level(tree: ast.AST) -> list[ast.AST]:
    """The nodes a module runs on import: everything but function bodies."""
    nodes, stack = [], [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(
            child
            for child in ast.iter_child_nodes(node)
            if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
        )
    return nodes


def imports(source: bytes | str, module: str, is_package: bool, known: Iterable[str], filename: str = "") -> set[str]:
    """The modules among ``known`` that ``module`` imports at import time (SyntaxError if it does not parse)."""
    known = set(known)
    tree = ast.parse(source, filename=filename or module)
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in _module_level(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            # "import a.b.c" also runs a and a.b
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                candidate = ".".join(parts[:i])
                if candidate in known:
                    found.add(candidate)
    return found - {module}


def importers(graph: Mapping[str, Iterable[str]], changed: Iterable[str]) -> set[str]:
    """``changed`` and every module of ``graph`` ({module: what it imports}) that imports one of them,
    directly or not; a package's submodules count as importing it (they run it first)."""
    users: dict[str, set[str]] = {}
    for module, imported in graph.items():
        for name in imported:
            users.setdefault(name, set()).add(module)
        parent = module.rpartition(".")[0]
        if parent:
            users.setdefault(parent, set()).add(module)
    found: set[str] = set()
    stack = list(changed)
    while stack:
        module = stack.pop()
        if module in found:
            continue
        found.add(module)
        stack.extend(users.get(module, ()))
    return found
