"""Generate the Python gRPC stubs from proto/ (``make proto``).

The stubs in ``src/voxstack/v1`` are generated, committed, and never edited by
hand; ``check()`` tells whether they still match the .proto files.
"""

from __future__ import annotations

import filecmp
import logging
import sys
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = PROJECT_ROOT / "proto"
STUB_ROOT = PROJECT_ROOT / "src"
# Generated files end in one of these; anything else in the stub folder is ours.
STUB_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


class ProtoGenError(RuntimeError):
    """protoc failed; the message holds its exit code."""


def proto_files(proto_root: Path = PROTO_ROOT) -> list[Path]:
    return sorted(proto_root.rglob("*.proto"))


def generate(out_root: Path = STUB_ROOT, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Run protoc over every .proto under ``proto_root``; return the files written."""
    # grpc_tools is a development dependency: imported only when generating.
    import grpc_tools
    from grpc_tools import protoc

    files = proto_files(proto_root)
    if not files:
        raise ProtoGenError(f"no .proto files under {proto_root}")
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *(str(f) for f in files),
    ]
    code = protoc.main(args)
    if code != 0:
        raise ProtoGenError(f"protoc exited with {code}")
    written = stub_files(out_root, proto_root)
    logger.info("generated %d stub files from %d protos", len(written), len(files))
    return written


def stub_files(out_root: Path = STUB_ROOT, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """The generated files that exist under ``out_root`` for the protos' packages."""
    dirs = {out_root / f.parent.relative_to(proto_root) for f in proto_files(proto_root)}
    return sorted(p for d in dirs if d.is_dir() for p in d.iterdir() if p.name.endswith(STUB_SUFFIXES))


def check(out_root: Path = STUB_ROOT, proto_root: Path = PROTO_ROOT) -> list[str]:
    """Compare the stubs in ``out_root`` with a fresh generation; return the differences."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_root = Path(tmp)
        fresh = {p.relative_to(fresh_root) for p in generate(fresh_root, proto_root)}
        current = {p.relative_to(out_root) for p in stub_files(out_root, proto_root)}
        problems = [f"missing: {p}" for p in sorted(fresh - current)]
        problems += [f"not generated from any .proto: {p}" for p in sorted(current - fresh)]
        problems += [
            f"differs from its .proto: {p}"
            for p in sorted(fresh & current)
            if not filecmp.cmp(fresh_root / p, out_root / p, shallow=False)
        ]
    return problems


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        problems = check()
        for line in problems:
            logger.error("%s", line)
        if problems:
            logger.error("stubs are out of date: run `make proto`")
            return 1
        logger.info("stubs are up to date")
        return 0
    if args:
        logger.error("usage: python -m voxstack.protogen [--check]")
        return 2
    generate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
