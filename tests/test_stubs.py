"""The committed stubs are exactly what the .proto files produce."""

from __future__ import annotations

import shutil
from pathlib import Path

from voxstack import protogen


def test_committed_stubs_match_the_protos() -> None:
    assert protogen.check() == [], "stubs are out of date: run `make proto`"


def test_check_notices_edited_missing_and_stray_stubs(tmp_path: Path) -> None:
    out = tmp_path / "src"
    shutil.copytree(protogen.STUB_ROOT / "voxstack" / "v1", out / "voxstack" / "v1")
    (out / "voxstack/v1/asr_pb2.py").write_text("# edited by hand\n")
    (out / "voxstack/v1/tts_pb2_grpc.py").unlink()
    (out / "voxstack/v1/old_pb2.py").write_text("")
    problems = protogen.check(out)
    assert problems == [
        "missing: voxstack/v1/tts_pb2_grpc.py",
        "not generated from any .proto: voxstack/v1/old_pb2.py",
        "differs from its .proto: voxstack/v1/asr_pb2.py",
    ]


def test_generated_modules_import_and_define_the_api() -> None:
    from voxstack.v1 import asr_pb2_grpc, common_pb2, llm_pb2, llm_pb2_grpc, tts_pb2, tts_pb2_grpc

    assert common_pb2.AudioFormat(encoding=common_pb2.AUDIO_ENCODING_WAV).encoding == 2
    assert hasattr(asr_pb2_grpc, "AsrStub") and hasattr(llm_pb2_grpc, "LlmStub") and hasattr(tts_pb2_grpc, "TtsStub")
    assert llm_pb2.GenerateResponse(delta="hi").WhichOneof("event") == "delta"
    assert tts_pb2.SynthesisChunk(last=True).last


def test_main_entry_points(tmp_path: Path, caplog) -> None:
    assert protogen.main(["--check"]) == 0
    assert protogen.main(["--bogus"]) == 2
