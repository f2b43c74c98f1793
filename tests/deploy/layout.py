"""What the deployment files are expected to say, read once for the deployment tests."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
NGINX_CONF = ROOT / "deploy" / "nginx" / "civic.conf"
K8S = ROOT / "deploy" / "k8s"

SERVICES = ("registration", "surveys", "notifications", "content")
#: The services and the web client: what the gateway proxies to.
UPSTREAMS = (*SERVICES, "web")
#: Public path prefix -> the process that answers it (the gateway, the Ingress and `make up` agree on these).
ROUTES = {f"/api/{name}/": name for name in SERVICES} | {"/q/": "content", "/": "web"}

REQUIRED_VAR = re.compile(r"\$\{(\w+):\?[^}]*\}")
ANY_VAR = re.compile(r"\$\{(\w+)(?::?[-?+][^}]*)?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key twice in one mapping (YAML keeps the last one silently)."""


def _mapping_without_duplicates(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys merged in with `<<:` may be overridden, that is what merging is for
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def load(text: str) -> Any:
    return yaml.load(text, Loader=StrictLoader)


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load(COMPOSE.read_text())
    return data


def required_variables() -> set[str]:
    return set(REQUIRED_VAR.findall(COMPOSE.read_text()))


def env_example() -> dict[str, str]:
    """Active (uncommented) assignments of .env.example."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def nginx_routes() -> dict[str, str]:
    """Prefix locations of civic.conf -> the compose service their upstream names."""
    text = NGINX_CONF.read_text()
    upstreams = {name: body for name, body in re.findall(r"upstream\s+(\w+)\s*\{(.*?)\}", text, flags=re.DOTALL)}
    hosts = {}
    for name, body in upstreams.items():
        servers = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", body, flags=re.MULTILINE)
        assert len(servers) == 1, (name, servers)
        host, port = servers[0]
        assert port == "8000", (name, port)
        hosts[name] = host
    routes = {}
    for location, upstream in re.findall(
        r"location\s+(/[^\s{]*)\s*\{\s*proxy_pass\s+http://(\w+)\s*;", text, flags=re.DOTALL
    ):
        routes[location] = hosts[upstream]
    return routes


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    """Every YAML document under deploy/k8s/ with the name of its file."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [(path.name, doc) for doc in yaml.load_all(path.read_text(), Loader=StrictLoader) if doc]
    return docs
