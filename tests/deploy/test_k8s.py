"""deploy/k8s/: every manifest valid against the Kubernetes schemas (kubernetes-validate, offline), and the
things schemas cannot see: probes, non-root, resources, one image, secrets by reference, the same routing as
the nginx gateway."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from tests.deploy import layout
from tests.deploy.layout import ROUTES, SERVICES

#: The oldest Kubernetes release still maintained by the big managed offerings, and the newest known.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

DOCS = layout.k8s_documents()


def _by_kind() -> dict[str, dict[str, dict[str, Any]]]:
    kinds: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for filename, doc in DOCS:
        name = doc.get("metadata", {}).get("name", filename)
        assert name not in kinds[doc["kind"]], f"two {doc['kind']}s named {name}"
        kinds[doc["kind"]][name] = doc
    return kinds


KINDS = _by_kind()


def _applied() -> list[tuple[str, dict[str, Any]]]:
    return [(f, d) for f, d in DOCS if d["kind"] != "Kustomization" and f != "secret.example.yaml"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(version: str) -> None:
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is a dev dependency (pip install -r requirements.lock)"
    )
    checked = 0
    for filename, doc in DOCS:
        if doc["kind"] == "Kustomization":
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{filename} {doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked >= 4 * 3 + 4


def test_kustomization_applies_every_manifest_but_the_secret_template() -> None:
    (kustomization,) = KINDS["Kustomization"].values()
    files = kustomization["resources"]
    expected = {path.name for path in layout.K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert set(files) == expected
    assert kustomization["namespace"] == "civic"
    assert all(d["metadata"].get("namespace") == "civic" for _, d in _applied() if d["kind"] != "Namespace")


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _assert_hardened(workload: dict[str, Any]) -> None:
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    # The namespace enforces the "restricted" Pod Security Standard, which requires these.
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    c = _container(workload)
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(c["resources"]["requests"])
    assert "memory" in c["resources"]["limits"]


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_hardened_deployment_with_probes(name: str) -> None:
    deployment = KINDS["Deployment"][name]
    _assert_hardened(deployment)
    c = _container(deployment)
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000}
    env = _env(c)
    assert env["CIVIC_SERVICES"] == name
    assert env["DATABASE_URL"]["secretKeyRef"] == {"name": "civic-secrets", "key": f"{name}-database-url"}
    assert env["REDIS_URL"]["secretKeyRef"]["key"] == "REDIS_URL"
    assert c["envFrom"] == [{"configMapRef": {"name": "civic-config"}}]
    assert "command" not in c and "args" not in c, "the image's default command serves CIVIC_SERVICES"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_service_and_a_migrate_job(name: str) -> None:
    deployment = KINDS["Deployment"][name]
    service = KINDS["Service"][name]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]

    job = KINDS["Job"][f"{name}-migrate"]
    _assert_hardened(job)
    c = _container(job)
    assert c["command"] == ["civic", "migrate", "--services", name]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("Never", "OnFailure")
    assert _env(c)["DATABASE_URL"] == _env(_container(deployment))["DATABASE_URL"]
    # Not selected by the Service: a migrate pod never receives traffic.
    assert not service["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()


def test_one_image_everywhere() -> None:
    images = {_container(d)["image"] for kind in ("Deployment", "Job") for d in KINDS[kind].values()}
    assert images == {"civic"}
    (kustomization,) = KINDS["Kustomization"].values()
    assert [i["name"] for i in kustomization["images"]] == ["civic"]


def test_secrets_are_referenced_never_written_down() -> None:
    (template,) = KINDS["Secret"].values()
    assert all(value == "" for value in template["stringData"].values()), "no sample secrets"
    for kind in ("Deployment", "Job"):
        for workload in KINDS[kind].values():
            for entry in _container(workload).get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if layout.SECRET_NAME.search(entry["name"]) or entry["name"] in ("DATABASE_URL", "REDIS_URL"):
                    assert ref, f"{workload['metadata']['name']}: {entry['name']} must come from the Secret"
                if ref and not ref.get("optional"):
                    assert ref["name"] == "civic-secrets"
                    assert ref["key"] in template["stringData"], ref
    (config,) = KINDS["ConfigMap"].values()
    assert not [key for key in config["data"] if layout.SECRET_NAME.search(key)]
    assert config["data"]["CIVIC_PRODUCTION"] == "true"
    # No private range is trusted wholesale: the operator names the ingress controller's addresses.
    trusted = config["data"]["CIVIC_TRUSTED_PROXIES"].split(",")
    assert trusted and not {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} & set(trusted)
    assert "FORWARDED_ALLOW_IPS" not in config["data"]


def test_ingress_routes_like_the_gateway() -> None:
    (ingress,) = KINDS["Ingress"].values()
    routes = {}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["pathType"] == "Prefix"
            backend = path["backend"]["service"]
            assert backend["name"] in KINDS["Service"]
            assert backend["port"] == {"name": "http"}
            routes[path["path"]] = backend["name"]
    assert routes == ROUTES
    assert layout.nginx_routes() == routes, "deploy/nginx/civic.conf routes differently"
