"""The deployment files validate: Kubernetes schemas, the compose specification, hadolint."""

from __future__ import annotations

import re
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


# --- probes and scrape targets hit what the processes serve ----------------------------------

HEALTH_ENDPOINTS = frozenset({"/healthz", "/readyz", "/metrics"})
"""What :class:`orra_events.health.HealthServer` serves on ``ORRA_HEALTH_PORT``."""

HEALTH_PORT_SERVICES = frozenset(
    {"planner", "dispatcher", "notifier", "examples", "gateway", "mcp"}
)
"""Images whose process serves ``HEALTH_ENDPOINTS`` when ``ORRA_HEALTH_PORT`` is set: the
services run by ``orra_events.runtime.run_service``, the SDK runner (``orra_sdk.run``) and
the gateway (its lifespan; its API port serves ``/healthz`` and ``/readyz`` too, never
``/metrics``), and the MCP bridge (``orra_mcp.runner``)."""


def _gateway_paths() -> set[str]:
    from orra_gateway import GatewaySettings, create_app

    return {route.path for route in create_app(GatewaySettings()).routes}


def _image_env() -> dict[str, str]:
    """The ``ORRA_*`` defaults the Dockerfile bakes into every image."""
    text = (ROOT / "Dockerfile").read_text()
    return dict(re.findall(r"\b(ORRA_[A-Z_]+)=([\w.:/-]+)", text.split(" AS runtime", 1)[1]))


def _served(service: str, env: dict[str, str]) -> dict[int, set[str]]:
    """Port -> paths that the process of image ``orra-<service>`` serves with ``env``."""
    served: dict[int, set[str]] = {}
    health_port = int(env.get("ORRA_HEALTH_PORT") or 0)
    if health_port and service in HEALTH_PORT_SERVICES:
        served[health_port] = set(HEALTH_ENDPOINTS)
    if service == "gateway":
        served.setdefault(int(env.get("ORRA_GATEWAY_PORT") or 8005), set()).update(_gateway_paths())
    return served


def _deployments() -> list[tuple[str, dict[str, Any]]]:
    return [(d["metadata"]["name"], d) for _, d in _core_manifests() if d["kind"] == "Deployment"]


def _container_env(container: dict[str, Any]) -> dict[str, str]:
    config = next(d for _, d in _core_manifests() if d["kind"] == "ConfigMap")
    env = {**_image_env()}
    for source in container.get("envFrom", []):
        if source.get("configMapRef", {}).get("name") == config["metadata"]["name"]:
            env.update(config["data"])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def _container_service(container: dict[str, Any]) -> str:
    image = container["image"].rsplit("/", 1)[-1].split(":", 1)[0]
    assert image.startswith("orra-"), image
    return image.removeprefix("orra-")


def test_the_image_serves_the_health_port_by_default() -> None:
    assert _image_env()["ORRA_HEALTH_PORT"] == "8080"


@pytest.mark.parametrize(("name", "deployment"), _deployments(), ids=[n for n, _ in _deployments()])
def test_deployment_probes_hit_served_endpoints(name: str, deployment: dict[str, Any]) -> None:
    for c in deployment["spec"]["template"]["spec"]["containers"]:
        served = _served(_container_service(c), _container_env(c))
        named = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe not in c:
                continue
            get = c[probe]["httpGet"]
            port = named.get(get["port"], get["port"])
            assert get["path"] in served.get(port, set()), (name, probe, port, served)


@pytest.mark.parametrize(
    ("name", "deployment"),
    [pytest.param(n, d, id=n) for n, d in _deployments()],
)
def test_deployment_ports_and_scrape_target_are_served(
    name: str, deployment: dict[str, Any]
) -> None:
    template = deployment["spec"]["template"]
    for c in template["spec"]["containers"]:
        served = _served(_container_service(c), _container_env(c))
        declared = {p["containerPort"] for p in c.get("ports", [])}
        assert declared == set(served), (name, declared, served)
    annotations = template["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") == "true":
        port = int(annotations["prometheus.io/port"])
        path = annotations.get("prometheus.io/path", "/metrics")
        assert any(
            path in _served(_container_service(c), _container_env(c)).get(port, set())
            for c in template["spec"]["containers"]
        ), (name, port, path)


def _compose_services() -> list[tuple[str, dict[str, Any]]]:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return sorted(doc["services"].items())


@pytest.mark.parametrize(
    ("name", "service"), _compose_services(), ids=[n for n, _ in _compose_services()]
)
def test_compose_healthchecks_hit_served_endpoints(name: str, service: dict[str, Any]) -> None:
    if not str(service.get("image", "")).startswith("orra-") or "entrypoint" in service:
        # nats (its own image) and one-shot jobs: not an Orra service process
        return
    env = {**_image_env(), **{k: str(v) for k, v in service.get("environment", {}).items()}}
    served = _served(env["ORRA_SERVICE"], env)
    check = " ".join(service["healthcheck"]["test"])
    (url,) = re.findall(r"https?://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/-]*)", check)
    port, path = int(url[0]), url[1]
    assert path == "/readyz", (name, path)
    assert path in served.get(port, set()), (name, port, path, served)
    for published in service.get("ports", []):
        container_port = int(str(published).rsplit(":", 1)[-1])
        assert container_port in served, (name, published, served)


def test_the_gateway_listens_where_probes_and_the_service_reach_it() -> None:
    # Its default host is 127.0.0.1 (right for `orra up`), unreachable from outside the pod.
    gateway = dict(_deployments())["orra-gateway"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    assert _container_env(container).get("ORRA_GATEWAY_HOST") == "0.0.0.0"


def test_the_gateway_api_port_never_serves_metrics() -> None:
    assert "/metrics" not in _gateway_paths()
    assert {"/healthz", "/readyz"} <= _gateway_paths()


@pytest.mark.parametrize(("name", "deployment"), _deployments(), ids=[n for n, _ in _deployments()])
def test_metrics_are_scraped_on_the_internal_port(name: str, deployment: dict[str, Any]) -> None:
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true", name
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = _container_env(container)
    assert int(annotations["prometheus.io/port"]) == int(env["ORRA_HEALTH_PORT"]), name
    if _container_service(container) == "gateway":
        assert annotations["prometheus.io/port"] != env.get("ORRA_GATEWAY_PORT", "8005")
        service = next(
            d
            for _, d in _core_manifests()
            if d["kind"] == "Service" and d["metadata"]["name"] == "orra-gateway"
        )
        # the Service (what clients reach) exposes the API only, not the metrics port
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]


def test_compose_prometheus_scrapes_what_each_service_serves() -> None:
    compose = dict(_compose_services())
    prometheus = compose["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    (mount,) = prometheus["volumes"]
    config = yaml.safe_load((ROOT / mount.split(":", 1)[0]).read_text())
    targets = [
        (job.get("metrics_path", "/metrics"), target)
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    ]
    orra_services = {
        n for n, s in compose.items() if str(s.get("image", "")).startswith("orra-")
    } - {"provision"}
    assert {t.split(":", 1)[0] for _, t in targets} == orra_services
    for path, target in targets:
        name, port = target.split(":")
        service = compose[name]
        env = {**_image_env(), **{k: str(v) for k, v in service.get("environment", {}).items()}}
        served = _served(env["ORRA_SERVICE"], env)
        assert path in served.get(int(port), set()), (target, served)
        if name == "gateway":
            assert int(port) != int(env["ORRA_GATEWAY_PORT"])


def test_production_sets_a_retention_of_the_event_log_the_gateway_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orra_gateway.settings import DEFAULT_RETENTION_MAX_BYTES, GatewaySettings

    config = next(d for _, d in _core_manifests() if d["kind"] == "ConfigMap")["data"]
    for key, value in config.items():
        monkeypatch.setenv(key, value)
    settings = GatewaySettings.from_env()
    assert settings.retention_max_age_s == 7 * 24 * 3600
    # Larger than the laptop default, and bounded.
    assert DEFAULT_RETENTION_MAX_BYTES < settings.retention_max_bytes <= 16 << 30
    assert settings.summary_max_age_s > settings.retention_max_age_s
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    gateway_env = compose["services"]["gateway"]["environment"]
    assert "ORRA_RETENTION_MAX_AGE_S" in gateway_env
    assert "ORRA_RETENTION_MAX_BYTES" in gateway_env
