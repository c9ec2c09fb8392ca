"""A warm spare: a service process started before it is needed, waiting to become the service.

The dev supervisor keeps one per service. It imports the libraries the
service's running instance had loaded (FastAPI, grpc, onnxruntime, ...: a
third of a start), then, for a model service, its engine (the registry's
``engine``: the module that loads the model, and what it imports from
voxstack), loads the model and warms it up, and writes the engine's files with
their digests next to its control socket. Then it waits on stdin. At a reload
the supervisor compares those files with the disk: if one changed, the spare is
discarded and the service starts cold; if not, it writes ``start``, and the
spare imports the rest of voxstack from disk and serves with the engine it
holds (``python -m voxstack.server SERVICE``, given the engine). A service
without an engine imports nothing of voxstack before ``start``.

Run by path, not as ``-m voxstack.supervisor.spare``, so that not even the
voxstack package is imported early.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import runpy
import sys
from pathlib import Path

ENGINE_SUFFIX = ".engine"  # next to the control socket: {file: sha256} of the engine's code
READY_SUFFIX = ".ready"  # next to the control socket, once the engine is loaded and warm


def preload(names_file: str) -> int:
    """Import the third-party modules listed in the file; the number imported.

    Standard library and private top-level modules are left alone: importing a
    C accelerator such as ``_asyncio`` before its package leaves asyncio half
    set up (its current_task() then misses every task), and the service imports
    them itself anyway. The list is sorted, so a package comes before its
    submodules.
    """
    try:
        with open(names_file) as f:
            names = json.load(f)
    except (OSError, ValueError):
        return 0
    imported = 0
    for name in names:
        top = name.split(".")[0]
        if top == "voxstack" or top.startswith("_") or top in sys.stdlib_module_names or name in sys.modules:
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


def loaded_voxstack_files() -> dict[str, str]:
    """Every voxstack source file imported so far, with its digest."""
    files = {}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (name == "voxstack" or name.startswith("voxstack.")) and path and path.endswith(".py"):
            files[path] = digest(path)
    return files


def engine_changes(manifest: Path, root: Path | None = None) -> str:
    """Why a spare's engine cannot serve the code on disk ("" if it can): its files changed since it
    imported them, or it has not recorded them yet (still importing)."""
    try:
        files = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return "the spare had not loaded its engine yet"
    changed = []
    for path, sha in files.items():
        try:
            same = digest(path) == sha
        except OSError:
            same = False
        if not same:
            changed.append(os.path.relpath(path, root) if root else path)
    return f"engine code changed ({', '.join(sorted(changed))})" if changed else ""


def prepare(engine_ref: str, service: str, manifest: str) -> object:
    """Import the engine's module, record its files, load and warm the engine; None if it cannot."""
    module_name, _, attr = engine_ref.partition(":")
    try:
        module = importlib.import_module(module_name)
        from voxstack.config import load_settings

        settings = load_settings()
        files = loaded_voxstack_files()
        with open(f"{manifest}.tmp", "w") as f:
            json.dump(files, f)
        os.replace(f"{manifest}.tmp", manifest)
        # At the service's niceness before its engine starts threads, which inherit it.
        nice = settings.service(service).nice
        if nice > os.nice(0):
            os.nice(nice - os.nice(0))
        prepared = getattr(module, attr)(settings)
        with open(manifest.removesuffix(ENGINE_SUFFIX) + READY_SUFFIX, "w") as f:
            f.write("engine" if prepared is not None else "none")  # none: e.g. an upstream llm, nothing to load
        return prepared
    except Exception as exc:  # the service starts cold at "start" and reports the real error itself
        sys.stderr.write(f"warm spare: no engine prepared ({type(exc).__name__}: {exc})\n")
        return None


def main() -> None:
    # As `python -m` would have it: the working directory first, not this file's folder.
    sys.path[0] = os.getcwd()
    names_file, engine_ref, *service_args = sys.argv[1:]
    preload(names_file)
    manifest = names_file.removesuffix(".imports") + ENGINE_SUFFIX
    prepared = prepare(engine_ref, service_args[0], manifest) if engine_ref else None
    if sys.stdin.readline().strip() != "start":
        return  # discarded unused
    if prepared is None:
        sys.argv = ["voxstack.server", *service_args]
        # Not imported from the registry: nothing of voxstack may load before "start".
        runpy.run_module("voxstack.server", run_name="__main__", alter_sys=True)
        return
    from voxstack.server.__main__ import main as serve

    sys.exit(serve(service_args, prepared=prepared))


if __name__ == "__main__":
    main()
