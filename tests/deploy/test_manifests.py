"""The deployment files validate: Kubernetes schemas, the compose specification, hadolint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from orra_events import Topology
from orra_examples.ecommerce import SERVICES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _core_manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{p.name}:{d['kind']}/{d['metadata']['name']}", d)
        for p in sorted(K8S.glob("*.yaml"))
        if p.name != "kustomization.yaml"
        for d in _docs(p)
    ]


@pytest.mark.parametrize(
    ("name", "doc"), _core_manifests(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_manifest_validates_against_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, "1.33", strict=True)


def test_every_deployment_has_probes_resources_and_grace() -> None:
    deployments = [d for _, d in _core_manifests() if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} >= {
        "orra-planner",
        "orra-dispatcher",
        "orra-notifier",
        "orra-gateway",
    }
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= 30
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["resources"]["requests"]
            assert c["resources"]["limits"]


def test_production_settings_refuse_private_webhooks_and_bind_streams() -> None:
    config = next(d for _, d in _core_manifests() if d["kind"] == "ConfigMap")
    assert config["data"]["ORRA_ALLOW_PRIVATE_WEBHOOKS"] == "false"
    assert config["data"]["ORRA_MANAGE_STREAMS"] == "false"
    assert config["data"]["ORRA_STREAM_REPLICAS"] == "3"


def test_kustomization_lists_every_file() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    present |= {f"keda/{p.name}" for p in (K8S / "keda").glob("*.yaml")}
    assert listed == present


def test_keda_scaledobjects_target_real_deployments_and_consumers() -> None:
    topology = Topology()
    deployments = {d["metadata"]["name"] for _, d in _core_manifests() if d["kind"] == "Deployment"}
    consumers = {
        topology.events_stream: {"planner", "dispatcher", "notifier"},
        topology.webhooks_stream: {"notifier_delivery"},
        topology.work_stream: {f"svc_{name}" for name in SERVICES},
    }
    objects = _docs(K8S / "keda" / "scaledobjects.yaml")
    assert {o["spec"]["scaleTargetRef"]["name"] for o in objects} == {
        "orra-planner",
        "orra-dispatcher",
        "orra-notifier",
        "orra-examples",
    }
    for obj in objects:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        assert obj["kind"] == "ScaledObject"
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments
        for trigger in obj["spec"]["triggers"]:
            assert trigger["type"] == "nats-jetstream"
            meta = trigger["metadata"]
            assert meta["consumer"] in consumers[meta["stream"]], meta
            assert int(meta["lagThreshold"]) > 0
    # every consumer of the stack scales something: a new example service needs a trigger
    triggered = {
        (t["metadata"]["stream"], t["metadata"]["consumer"])
        for o in objects
        for t in o["spec"]["triggers"]
    }
    expected = {(stream, name) for stream, names in consumers.items() for name in names}
    assert expected - triggered == set(), "consumers without a KEDA trigger"


def test_compose_file_validates_against_the_compose_specification() -> None:
    result = subprocess.run(
        [str(BIN / "docker-compose"), "-f", str(ROOT / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"ORRA_API_KEY": "test-key", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    # This docker-compose build reports schema violations on stderr with exit code 0.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_compose_file_rejects_an_invalid_key(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text(
        (ROOT / "compose.yaml")
        .read_text()
        .replace("restart: unless-stopped", "restartt: always", 1)
    )
    result = subprocess.run(
        [str(BIN / "docker-compose"), "-f", str(bad), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"ORRA_API_KEY": "test-key", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert "additional properties 'restartt' not allowed" in result.stderr


def test_dockerfile_lints_clean() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
