"""A warm spare: a service process started before it is needed, waiting to become the service.

The dev supervisor keeps one per service. It imports the libraries the
service's running instance had loaded (FastAPI, grpc, onnxruntime, ...: a
third of a start), but no voxstack module, then waits on stdin. At a reload the
supervisor writes ``start``: only then does it import voxstack and run
``python -m voxstack.server SERVICE``, so it runs whatever code is on disk at that moment.

Run by path, not as ``-m voxstack.supervisor.spare``, so that not even the
voxstack package is imported early.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys


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


def main() -> None:
    # As `python -m` would have it: the working directory first, not this file's folder.
    sys.path[0] = os.getcwd()
    names_file, *service_args = sys.argv[1:]
    preload(names_file)
    if sys.stdin.readline().strip() != "start":
        return  # discarded unused
    sys.argv = ["voxstack.server", *service_args]
    # Not imported from the registry: nothing of voxstack may load before "start".
    runpy.run_module("voxstack.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
