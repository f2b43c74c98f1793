"""The OpenAPI documents say what each operation answers (shared/http/openapi.py), and /docs needs no CDN.

Whether the services really answer what the documents say is tests/api's job (schemathesis against a running
server); this checks the documents' rules themselves, quickly and without servers."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from civic.services import select
from shared.http.app import create_app
from shared.http.problems import PROBLEM
from shared.settings import Settings

SERVICES = ("registration", "surveys", "notifications", "content")
PROBLEM_REFS = {"#/components/schemas/Problem", "#/components/schemas/ValidationProblem"}


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app(select(None), Settings(log_json=False), migrate=False, background=False)


@pytest.fixture(scope="module")
def doc(app: Any) -> dict[str, Any]:
    document: dict[str, Any] = app.openapi()
    return document


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_fastapis_validation_error_is_gone_and_every_error_is_a_problem_document(doc: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in str(doc)
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            content = response.get("content", {})
            assert list(content) == [PROBLEM], (method, path, status)
            ref = content[PROBLEM]["schema"]["$ref"]
            assert ref in PROBLEM_REFS, (method, path, status)
            assert ref.endswith("ValidationProblem") == (status == "422"), (method, path, status)


def test_errors_follow_from_each_operations_shape(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        codes = set(op["responses"])
        params = op.get("parameters", [])
        where = (method, path, sorted(codes))
        assert ("422" in codes) == bool(params or "requestBody" in op), where
        if op.get("security"):
            assert {"401", "403"} <= codes, where
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
        else:
            assert "401" not in codes, where
        if any(p["in"] == "path" for p in params):
            assert "404" in codes, where
        if "requestBody" in op:
            assert {"400", "415"} <= codes, where


def test_staff_operations_name_the_bearer_scheme_and_public_ones_none(doc: dict[str, Any]) -> None:
    scheme = doc["components"]["securitySchemes"]["staffToken"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    secured = {(m, p) for m, p, op in operations(doc) if op.get("security") == [{"staffToken": []}]}
    public = {("post", "/api/registration/meetings/{meeting_id}/registrations")}
    for method, path, _ in operations(doc):
        if "/staff/" in path or path.startswith(("/api/surveys/surveys", "/api/notifications/webhooks")):
            assert (method, path) in secured, (method, path)
        if "/public/" in path or (method, path) in public:
            assert (method, path) not in secured, (method, path)


def test_every_json_success_answer_has_a_typed_schema(doc: dict[str, Any]) -> None:
    untyped = []
    for method, path, op in operations(doc):
        for status, response in op["responses"].items():
            if not status.startswith("2"):
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is not None and "$ref" not in schema and "$ref" not in schema.get("items", {}):
                untyped.append((method, path, status))
    assert untyped == []


@pytest.mark.parametrize(
    ("path", "media"),
    [
        ("/api/registration/staff/meetings/{meeting_id}/registrations.csv", ["text/csv"]),
        (
            "/api/registration/staff/meetings/{meeting_id}/registrations.xlsx",
            ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
        ),
        ("/api/surveys/surveys/{survey_id}/qr", ["image/png", "image/svg+xml"]),
        ("/api/surveys/public/{tenant}/{ref}/qr", ["image/png", "image/svg+xml"]),
        (
            "/api/surveys/surveys/{survey_id}/export",
            ["text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"],
        ),
        ("/api/content/staff/qr-codes/{code}/image.{fmt}", ["image/png", "image/svg+xml"]),
        ("/api/registration/meetings/{meeting_id}/calendar.ics", ["text/calendar"]),
        ("/api/registration/staff/data-exports/{export_id}/export.zip", ["application/zip"]),
    ],
)
def test_images_and_files_are_documented_as_what_they_are(doc: dict[str, Any], path: str, media: list[str]) -> None:
    assert list(doc["paths"][path]["get"]["responses"]["200"]["content"]) == media


@pytest.mark.parametrize("path", ["/api/notifications/unsubscribe", "/api/notifications/subscriptions/confirm"])
def test_mail_links_are_documented_as_redirects_to_the_web_pages(doc: dict[str, Any], path: str) -> None:
    answer = doc["paths"][path]["get"]["responses"]["303"]
    assert not answer.get("content"), answer


def test_links_name_operations_and_parameters_that_exist(doc: dict[str, Any]) -> None:
    by_id = {op["operationId"]: op for _, _, op in operations(doc)}
    count = 0
    for _, _, op in operations(doc):
        for response in op["responses"].values():
            for link in response.get("links", {}).values():
                target = by_id[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= names, link
                assert all(v.startswith("$response.body#/") for v in link["parameters"].values()), link
                count += 1
    assert count > 40


async def test_each_service_document_holds_its_own_operations(app: Any) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://civic.test") as client:
        for service in SERVICES:
            doc = (await client.get(f"/api/{service}/openapi.json")).json()
            assert doc["paths"], service
            assert all(p.startswith(f"/api/{service}/") for p in doc["paths"]), service
            assert doc["components"]["securitySchemes"]["staffToken"]


@pytest.mark.parametrize("base", ["", "/api/registration", "/api/content"])
async def test_swagger_ui_is_served_by_civic_with_no_third_party_request(app: Any, base: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://civic.test") as client:
        page = await client.get(f"{base}/docs")
        assert page.status_code == 200
        assert "http://" not in page.text and "https://" not in page.text, page.text
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sorted(assets) == sorted(
            f"{base}/docs/assets/{name}" for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
        )
        for asset in assets:
            r = await client.get(asset)
            assert r.status_code == 200, asset
            assert "sourceMappingURL" not in r.text[-500:], asset
        assert "openapi.json" in page.text
        # The validator badge would send the document to validator.swagger.io.
        assert '"validatorUrl": null' in page.text
        notice = await client.get(f"{base}/docs/assets/LICENSE")
        assert "Apache License" in notice.text
    # No ReDoc: it loads its script from a CDN.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://civic.test") as client:
        assert (await client.get("/redoc")).status_code == 404
