"""The README documents every setting."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from voxstack.config import Settings, env_name

README = Path(__file__).resolve().parents[1] / "README.md"


def env_names(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[str]:
    names = []
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += env_names(annotation, (*prefix, field_name))
        else:
            names.append(env_name((*prefix, field_name)))
    return names


def test_every_setting_is_in_the_readme_table() -> None:
    text = README.read_text()
    missing = [name for name in env_names(Settings) if f"| `{name}` |" not in text]
    assert missing == []


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text().splitlines()[:20]
    assert any(line.startswith("make dev") for line in head)
    assert any(line.startswith("make test") for line in head)
