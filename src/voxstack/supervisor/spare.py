"""A warm spare: a service process started before it is needed, waiting to become the service.

The dev supervisor keeps one per service, and talks to it over one channel:
JSON lines on the spare's stdin (the supervisor's) and on the pipe whose
descriptor ``VOXSTACK_SUPERVISOR_FD`` names (the spare's, then that of the
service it becomes: ``voxstack.runtime``; its stdout is the service's log).
The first line in says which modules the running instance had loaded. The
spare imports the libraries among them (FastAPI, grpc, onnxruntime, ...),
then, for a model service, its engine (the registry's ``engine``: the module
that loads the model, and what it imports from voxstack), and says ``engine``
with the engine's files and their digests; it loads the model, warms it up
and says ``engine_ready``. Then it imports the rest of the voxstack modules
the running instance had loaded (the service's own code), says ``code`` with
the files it imported, and waits.

At a reload the supervisor compares the engine's files with the disk: if one
changed, the spare is discarded and the service starts cold. If not, it sends
``start``, and the spare makes its code that of the disk: every module whose
file changed since the spare read it, and every module importing one of those
(``voxstack.modgraph``), is dropped and imported again from disk (the
reloader has removed the changed files' bytecode); the others are the code on
disk already. Then it serves (``python -m voxstack.server
SERVICE``, given the engine). What cannot be imported twice in one process (the
generated gRPC stubs, or the engine's code if it changed after the
supervisor's check) makes the spare replace itself with a cold start.

This assumes what the code's standards ask: importing a module changes no
other module's objects. Digests are taken before anything of voxstack is
imported, so a save during the spare's imports marks the module changed.

Run by path, not as ``-m voxstack.supervisor.spare``, so that nothing of
voxstack is imported before the digests are taken.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import runpy
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

START = "start"  # the supervisor's line that makes the spare the service
PACKAGE = "voxstack"
STUB_SUFFIXES = ("_pb2.py", "_pb2_grpc.py")  # a protobuf descriptor pool takes each file once per process


def preload(names: Iterable[str]) -> int:
    """Import the third-party modules among ``names``; the number imported.

    Standard library and private top-level modules are left alone: importing a
    C accelerator such as ``_asyncio`` before its package leaves asyncio half
    set up (its current_task() then misses every task), and the service imports
    them itself anyway. The list is sorted, so a package comes before its
    submodules.
    """
    imported = 0
    for name in sorted(n for n in names if isinstance(n, str)):
        top = name.split(".")[0]
        if top == PACKAGE or top.startswith("_") or top in sys.stdlib_module_names or name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # some modules cannot be imported on their own; the service imports them
            continue
        imported += 1
    return imported


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot() -> dict[str, str]:
    """Every source file of the package on disk with its digest, read before the spare imports any of them."""
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return {}
    files = {}
    for root in spec.submodule_search_locations:
        for path in Path(root).rglob("*.py"):
            with contextlib.suppress(OSError):
                files[str(path)] = digest(str(path))
    return files


def loaded_files(on_disk: Mapping[str, str]) -> dict[str, str]:
    """Every voxstack source file imported so far, with its digest when the spare started ("" if it was
    not on disk then: it counts as changed)."""
    return {path: on_disk.get(path, "") for path in _loaded_modules().values()}


def changed_files(
    files: Mapping[str, str] | None, root: Path | None = None, suffixes: tuple[str, ...] = ("",)
) -> list[str] | None:
    """The files of a manifest ({file: sha256}) ending in one of ``suffixes`` that differ from the disk now;
    None if the spare has not sent it yet."""
    if files is None:
        return None
    changed = []
    for path, sha in files.items():
        if not path.endswith(suffixes):
            continue
        try:
            same = digest(path) == sha
        except OSError:
            same = False
        if not same:
            changed.append(os.path.relpath(path, root) if root else path)
    return sorted(changed)


def engine_changes(manifest: Mapping[str, str] | None, root: Path | None = None) -> str:
    """Why a spare's engine cannot serve the code on disk ("" if it can): its files changed since it
    imported them, or it has not recorded them yet (still importing)."""
    changed = changed_files(manifest, root)
    if changed is None:
        return "the spare had not loaded its engine yet"
    return f"engine code changed ({', '.join(changed)})" if changed else ""


def stub_changes(manifest: Mapping[str, str] | None, root: Path | None = None) -> str:
    """Why a spare cannot serve the code on disk for a reason other than its engine: a generated stub changed.
    Only the stubs are read: at a reload the spare compares the rest itself (``refresh``)."""
    stubs = changed_files(manifest, root, STUB_SUFFIXES) or []
    return f"generated stubs changed ({', '.join(stubs)})" if stubs else ""


def prepare(engine_ref: str, service: str, say: Say, on_disk: Mapping[str, str]) -> object:
    """Import the engine's module, say its files, load and warm the engine; None if it cannot."""
    module_name, _, attr = engine_ref.partition(":")
    try:
        from voxstack.config import load_settings

        settings = load_settings()
        # At the service's niceness before its modules load (an import may start threads: numpy's BLAS pool)
        # and its engine starts threads: they keep the niceness they were started with.
        nice = settings.service(service).nice
        if nice > os.nice(0):
            os.nice(nice - os.nice(0))
        module = importlib.import_module(module_name)
        say({"event": "engine", "files": loaded_files(on_disk)})
        prepared = getattr(module, attr)(settings)
        say({"event": "engine_ready", "loaded": prepared is not None})  # not: e.g. an upstream llm
        return prepared
    except Exception as exc:  # the service starts cold at "start" and reports the real error itself
        sys.stderr.write(f"warm spare: no engine prepared ({type(exc).__name__}: {exc})\n")
        say({"event": "engine_ready", "loaded": False, "error": f"{type(exc).__name__}: {exc}"})
        return None


def preimport(names: Iterable[str]) -> int:
    """Import the voxstack modules among ``names`` (the service's own code); the number imported."""
    imported = 0
    for name in sorted(n for n in names if isinstance(n, str)):
        if name.split(".")[0] != PACKAGE or name.endswith("__main__") or name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:  # e.g. a save left it broken: the service imports it at start and reports it
            continue
        imported += 1
    return imported


def import_graph() -> dict[str, set[str]]:
    """What each loaded voxstack module imports at import time, read from its file (unchanged files are
    the code loaded; a changed one is imported again anyway)."""
    from voxstack.modgraph import imports

    loaded = _loaded_modules()
    graph = {}
    for name, path in loaded.items():
        try:
            with open(path, "rb") as f:
                graph[name] = imports(f.read(), name, path.endswith("__init__.py"), loaded, path)
        except (OSError, SyntaxError, ValueError):
            graph[name] = set()
    return graph


def refresh(recorded: Mapping[str, str], graph: Mapping[str, Iterable[str]], engine: Iterable[str]) -> str:
    """Drop the modules whose files changed since ``recorded`` and those importing them, so that the
    service imports them again from disk; what was done, or "" if the spare cannot do it (start cold)."""
    from voxstack.modgraph import importers

    loaded = _loaded_modules()
    changed = {name for name, path in loaded.items() if _digest_or_none(path) != recorded.get(path)}
    dropped = importers(graph, changed) & set(loaded)
    stubs = sorted(n for n in dropped if loaded[n].endswith(STUB_SUFFIXES))
    held = sorted(dropped & set(engine))
    if stubs or held:
        return ""
    for name in dropped:
        module = sys.modules.pop(name, None)
        parent, _, child = name.rpartition(".")
        if parent in sys.modules and getattr(sys.modules[parent], child, None) is module:
            delattr(sys.modules[parent], child)
    if not changed:
        return "no module changed"
    importing = len(dropped - changed)
    them = "it" if len(changed) == 1 else "them"
    return f"imported again: {', '.join(sorted(changed))}" + (
        f" and {importing} module{'s' if importing != 1 else ''} importing {them}" if importing else ""
    )


def main() -> None:
    # As `python -m` would have it: the working directory first, not this file's folder.
    sys.path[0] = os.getcwd()
    engine_ref, *service_args = sys.argv[1:]
    loaded = _read_line()
    preload(loaded.get("imports") or ())
    on_disk = snapshot()
    from voxstack.registry import SUPERVISOR_FD_ENV  # after the digests: recorded like the rest

    say = messages(os.environ.get(SUPERVISOR_FD_ENV, ""))
    prepared = prepare(engine_ref, service_args[0], say, on_disk) if engine_ref else None
    engine = set(_loaded_modules()) if prepared is not None else set()
    preimport(loaded.get("modules") or ())
    graph = import_graph()  # imports voxstack.modgraph too, which refresh() uses: recorded with the rest
    recorded = loaded_files(on_disk)
    say({"event": "code", "files": recorded})  # the service it becomes says the rest on the same descriptor
    if sys.stdin.readline().strip() != START:
        return  # discarded unused
    done = refresh(recorded, graph, engine)
    if not done:
        # The spare cannot become this code: become a cold start of it, in this process (same pid, socket).
        sys.stderr.write("warm spare: generated stubs or engine code changed: starting cold\n")
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "voxstack.server", *service_args])
    sys.stderr.write(f"warm spare: {done}\n")
    if prepared is None:
        sys.argv = ["voxstack.server", *service_args]
        runpy.run_module("voxstack.server", run_name="__main__", alter_sys=True)
        return
    from voxstack.server.__main__ import main as serve

    sys.exit(serve(service_args, prepared=prepared))


def _loaded_modules() -> dict[str, str]:
    """{module name: source file} of every voxstack module imported so far."""
    found = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (name == PACKAGE or name.startswith(f"{PACKAGE}.")) and path and path.endswith(".py"):
            found[name] = path
    return found


def _digest_or_none(path: str) -> str | None:
    try:
        return digest(path)
    except OSError:
        return None


Say = Callable[[Mapping[str, object]], None]


def messages(fd: str) -> Say:
    """What writes the spare's messages, one JSON line each, to descriptor ``fd`` ("" or bad: nowhere). The
    descriptor stays open: the service this process becomes (or execs) writes to it too."""

    def say(message: Mapping[str, object]) -> None:
        if not fd.isdigit():
            return
        data = (json.dumps(message) + "\n").encode()
        try:
            while data:  # a pipe may take a long line in parts
                data = data[os.write(int(fd), data) :]
        except OSError:  # the supervisor went away: it will not start this spare
            return

    return say


def _read_line() -> dict[str, Any]:
    """The supervisor's first line: the modules the running instance had loaded ({} if none or bad)."""
    try:
        value = json.loads(sys.stdin.readline() or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


if __name__ == "__main__":
    main()
