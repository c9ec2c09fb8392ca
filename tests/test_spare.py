"""The dev supervisor's warm spares: preload libraries, import the service's code ahead and, on `start`, import
again what changed since, then become the service."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from voxstack import protogen
from voxstack.registry import SUPERVISOR_FD_ENV
from voxstack.supervisor.process import spare_argv
from voxstack.supervisor.spare import preload
from voxstack.testing.edits import set_tail

REPO_PACKAGE = protogen.PROJECT_ROOT / "src" / "voxstack"

PROBE = (
    "import sys, json; from voxstack.supervisor.spare import preload; n = preload(json.loads(sys.argv[1])); "
    "print(json.dumps([n, sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'voxstack', 'rich'))]))"
)


def test_preload_imports_third_party_packages_only() -> None:
    listed = ["_asyncio", "json", "nonexistent_pkg.sub", "rich", "rich.console", "voxstack.config"]
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(listed)], capture_output=True, text=True, check=True)
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


def test_preload_of_nothing_does_nothing() -> None:
    assert preload([]) == 0


def test_a_spare_becomes_the_command_on_start_and_exits_quietly_when_discarded() -> None:
    argv = spare_argv("tts")  # no engine: nothing of voxstack before "start"
    assert argv[1].endswith("supervisor/spare.py") and argv[-1] == "tts" and argv[2] == ""
    base = argv[:3]
    lists = json.dumps({"imports": ["rich"], "modules": ["voxstack.text"]})
    started = subprocess.run([*base, "--help"], input=f"{lists}\nstart\n", capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    assert "python -m voxstack.server" in started.stdout and "SERVICE" in started.stdout.upper()
    discarded = subprocess.run([*base, "--help"], input=f"{lists}\n", capture_output=True, text=True, timeout=60)
    assert discarded.returncode == 0 and discarded.stdout == ""


def test_a_spare_says_what_code_it_imported_on_its_channel() -> None:
    ours, theirs = os.pipe()
    env = {**os.environ, SUPERVISOR_FD_ENV: str(theirs)}
    lists = json.dumps({"imports": ["rich"], "modules": ["voxstack.text", "voxstack.nonexistent"]})
    with subprocess.Popen(
        spare_argv("tts"), stdin=subprocess.PIPE, env=env, pass_fds=(theirs,), text=True, stdout=subprocess.DEVNULL
    ) as proc:
        os.close(theirs)
        assert proc.stdin is not None
        proc.stdin.write(lists + "\n")
        proc.stdin.flush()
        with os.fdopen(ours) as channel:
            said = json.loads(channel.readline())  # then it waits for "start"
            proc.stdin.close()  # discarded
            assert channel.read() == ""  # nothing more, and closed with the process
        assert proc.wait(30) == 0
    assert said["event"] == "code", said
    files = said["files"]
    assert any(f.endswith("voxstack/text.py") for f in files) and all(len(sha) == 64 for sha in files.values())


REFRESH_PROBE = r"""
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("spare", sys.argv[1])
spare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(spare)
on_disk = spare.snapshot()
spare.preimport(json.loads(sys.argv[2]))
graph = spare.import_graph()
recorded = spare.loaded_files(on_disk)
import voxstack.audio as audio, voxstack.core.pipeline as pipeline
print("ready", flush=True)
sys.stdin.readline()  # the test saves its edits meanwhile
done = spare.refresh(recorded, graph, engine=set(json.loads(sys.argv[3])))
result = {"done": done}
if done:
    import voxstack.audio, voxstack.core.pipeline, voxstack.text
    result |= {
        "audio kept": voxstack.audio is audio,
        "pipeline kept": voxstack.core.pipeline is pipeline,
        "pipeline's text is the new one": voxstack.core.pipeline.SentenceStream is voxstack.text.SentenceStream,
        "layer": getattr(voxstack.text, "TEST_LAYER", None),
    }
print(json.dumps(result))
"""


def refreshed(tmp_path: Path, edit, engine: tuple[str, ...] = ()) -> dict:  # type: ignore[no-untyped-def]
    """A spare's code refresh in a process of its own on a copy of the source: preimport, ``edit(package)``,
    refresh, import again; what it did and which module objects it kept."""
    src = tmp_path / "src"
    shutil.copytree(REPO_PACKAGE, src / "voxstack", ignore=shutil.ignore_patterns("__pycache__"))
    names = json.dumps(["voxstack.audio", "voxstack.core.pipeline", "voxstack.text"])
    spare = Path(spare_argv("tts")[1])
    env = {**os.environ, "PYTHONPATH": str(src)}
    argv = [sys.executable, "-c", REFRESH_PROBE, str(spare), names, json.dumps(list(engine))]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "ready"
        edit(src / "voxstack")
        out, _ = proc.communicate("start\n", timeout=60)
    assert proc.returncode == 0
    return json.loads(out)


def test_a_refresh_without_changes_keeps_every_module(tmp_path: Path) -> None:
    result = refreshed(tmp_path, lambda package: None)
    assert result["done"] == "no module changed" and result["audio kept"] and result["pipeline kept"], result


def test_a_refresh_imports_again_the_changed_module_and_its_importers_only(tmp_path: Path) -> None:
    result = refreshed(tmp_path, lambda package: set_tail(package / "text.py", 'TEST_LAYER = "new"\n'))
    assert result["done"].startswith("imported again: voxstack.text and "), result
    assert result["layer"] == "new" and result["pipeline's text is the new one"], result
    assert not result["pipeline kept"], result  # it imports the changed module: imported again
    assert result["audio kept"], result  # it does not


def test_a_changed_stub_or_held_engine_code_cannot_be_refreshed(tmp_path: Path) -> None:
    stub = refreshed(tmp_path / "stub", lambda package: set_tail(package / "v1" / "common_pb2.py", "# edited\n"))
    assert stub == {"done": ""}, stub  # a descriptor pool takes a proto file once per process
    held = refreshed(
        tmp_path / "engine", lambda package: set_tail(package / "text.py", "X = 1\n"), engine=("voxstack.text",)
    )
    assert held == {"done": ""}, held


def test_stub_changes_name_the_changed_generated_stubs_only(tmp_path: Path) -> None:
    from voxstack.supervisor.spare import digest, stub_changes

    stub, code = tmp_path / "asr_pb2.py", tmp_path / "text.py"
    for f in (stub, code):
        f.write_text("# before\n")
    manifest = {str(f): digest(str(f)) for f in (stub, code)}  # what the spare said it imported
    code.write_text("# after\n")
    assert stub_changes(manifest, tmp_path) == ""  # other code the spare imports again itself
    stub.write_text("# after\n")
    assert stub_changes(manifest, tmp_path) == "generated stubs changed (asr_pb2.py)"
    assert stub_changes(None) == ""  # not said yet


# Imports every module of the package one at a time; after each, whether a module loaded before it changed:
# a name bound, rebound or removed, or a module-level dict, list or set filled (the package gaining its new
# submodule aside, which is the import system's own doing).
INVARIANT_PROBE = r"""
import importlib, json, pkgutil, sys
import voxstack

def fingerprint(value):
    if isinstance(value, dict):
        return ["dict", sorted([repr(k), id(v)] for k, v in value.items())]
    if isinstance(value, (list, set)):
        return [type(value).__name__, sorted(id(v) for v in value)]
    return id(value)

def state():
    return {
        name: {k: fingerprint(v) for k, v in vars(m).items() if not (k.startswith("__") and k.endswith("__"))}
        for name, m in list(sys.modules.items())
        if name == "voxstack" or name.startswith("voxstack.")
    }

names = sorted(m.name for m in pkgutil.walk_packages(voxstack.__path__, "voxstack.") if not m.name.endswith("__main__"))
problems = []
for name in names:
    if name in sys.modules:
        continue
    before = state()
    try:
        importlib.import_module(name)
    except Exception as exc:
        problems.append(f"{name} cannot be imported: {type(exc).__name__}: {exc}")
        continue
    after = state()
    for other, attrs in before.items():
        now = after.get(other, {})
        for attr in sorted(set(attrs) | set(now)):
            child = sys.modules.get(f"{other}.{attr}")
            if attrs.get(attr) == now.get(attr) or (attr not in attrs and child is not None and now[attr] == id(child)):
                continue
            problems.append(f"importing {name} changed {other}.{attr}")
print(json.dumps({"modules": len(names), "problems": problems}))
"""


def import_problems(path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path)}
    out = subprocess.run([sys.executable, "-c", INVARIANT_PROBE], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_importing_a_module_changes_no_other_module(tmp_path: Path) -> None:
    """What a spare's refresh relies on: a module imported again from disk leaves the others' objects alone."""
    found = import_problems(protogen.PROJECT_ROOT / "src")
    assert found["modules"] > 150 and found["problems"] == [], found["problems"]
    # The probe sees it when a module does change another.
    src = tmp_path / "src"
    shutil.copytree(REPO_PACKAGE, src / "voxstack", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "voxstack" / "zz_hooks.py").write_text("HOOKS: list[int] = []\n")
    (src / "voxstack" / "zz_offender.py").write_text(
        "from voxstack import text, zz_hooks\ntext.TEST_PATCHED = 1\nzz_hooks.HOOKS.append(1)\n"
    )
    found = import_problems(src)
    assert set(found["problems"]) == {
        "importing voxstack.zz_offender changed voxstack.text.TEST_PATCHED",  # a name bound in another
        "importing voxstack.zz_offender changed voxstack.zz_hooks.HOOKS",  # another's list filled
    }, found["problems"]
