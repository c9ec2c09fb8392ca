"""The README stays short and starts with the two commands; generated docs and the Swarm stack file are current."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from voxstack.config import Settings, env_name
from voxstack.settings_docs import render

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "CONFIGURATION.md"


def env_names(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[str]:
    names = []
    for field_name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += env_names(annotation, (*prefix, field_name))
        else:
            names.append(env_name((*prefix, field_name)))
    return names


def test_readme_starts_with_the_two_commands() -> None:
    head = README.read_text().splitlines()[:20]
    assert any(line.startswith("make dev") for line in head)
    assert any(line.startswith("make test") for line in head)


def test_readme_is_short_and_its_links_resolve() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#]+)\)", text)
    assert links and all((ROOT / link).exists() for link in links if not link.startswith("http")), links


def test_configuration_docs_are_generated_from_the_settings_and_current() -> None:
    assert CONFIGURATION.read_text() == render(), "docs/CONFIGURATION.md is stale: run `make docs`"


def test_every_setting_is_in_the_configuration_reference() -> None:
    text = render()
    assert [name for name in env_names(Settings) if f"| `{name}` |" not in text] == []


def test_the_config_command_prints_the_reference_and_the_settings(clean_env) -> None:
    import json

    from typer.testing import CliRunner

    from voxstack.cli import app

    runner = CliRunner()
    docs = runner.invoke(app, ["config", "--docs"])
    assert docs.exit_code == 0 and docs.stdout == render()
    shown = runner.invoke(app, ["config", "--mode", "dev"], env={"VOXSTACK_LLM__UPSTREAM_API_KEY": "sk-secret"})
    assert shown.exit_code == 0, shown.stdout
    settings = json.loads(shown.stdout)
    assert settings["mode"] == "dev" and settings["asr"]["port"] == 50051
    assert "sk-secret" not in shown.stdout


def test_the_swarm_stack_file_is_derived_from_the_compose_file_and_current() -> None:
    import runpy

    import yaml

    derive = runpy.run_path(str(ROOT / "deploy" / "swarm" / "derive.py"))
    assert derive["TARGET"].read_text() == derive["render"](), "deploy/swarm/docker-stack.yml is stale: `make docs`"
    stack = yaml.safe_load(derive["TARGET"].read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    # Every production service is in the stack, with its image and settings; the model services as dnsrr replicas.
    assert set(stack["services"]) == {n for n, s in compose["services"].items() if not s.get("profiles")}
    for name, service in stack["services"].items():
        assert service["image"] == compose["services"][name]["image"]
        assert service["deploy"]["endpoint_mode"] == "dnsrr"
        assert {k: v for k, v in service["environment"].items() if k != "VOXSTACK_CORE__ALLOW_ANONYMOUS"} == {
            k: v for k, v in compose["services"][name]["environment"].items() if k != "VOXSTACK_CORE__ALLOW_ANONYMOUS"
        }
    assert stack["services"]["core"]["environment"]["VOXSTACK_CORE__ALLOW_ANONYMOUS"].endswith(":-false}")


def test_the_error_codes_in_the_api_docs_are_generated_and_current() -> None:
    from voxstack import codes

    api = (ROOT / "docs" / "API.md").read_text()
    assert codes.rewrite(api) == api, "docs/API.md's error codes are stale: run `make docs`"


def test_every_error_code_is_named_in_codes_not_written_as_a_literal() -> None:
    """Codes live in voxstack.codes: a reason or code spelled as a string elsewhere would miss the docs."""
    from voxstack.codes import ErrorCode, OpenAICode

    known = {c.value for c in ErrorCode} | {c.value for c in OpenAICode}
    literal = re.compile(r"""(?:reason|code)=["']([A-Za-z_]+)["']|["']([A-Z]+_[A-Z_]+)["']""")
    found = []
    for path in (ROOT / "src" / "voxstack").rglob("*.py"):
        if path.name == "codes.py" or path.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in literal.finditer(line):
                value = match.group(1) or match.group(2)
                if value in known:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {value}")
    assert not found, "use voxstack.codes:\n" + "\n".join(found)
