"""The application shell: health, metrics, docs, security headers, one error shape."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from biblioverse.app import create_app
from biblioverse.settings import Settings
from tests.factories import STAFF_PW, World


def test_health_reports_the_database(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["database"] == "ok"


def test_metrics_count_requests_by_route_template(
    client: TestClient, world: World, app: FastAPI
) -> None:
    client.get(f"/api/v1/libraries/{world.central.id}")
    text = TestClient(app, client=("127.0.0.1", 50000)).get("/metrics").text
    assert (
        'biblioverse_http_requests_total{method="GET",route="/api/v1/libraries/{unit_id}",status="200"}'
        in text
    )
    assert "biblioverse_http_request_duration_seconds_bucket" in text


def test_metrics_answer_this_machine_or_the_token_only(
    client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    def status(host: str, headers: dict[str, str] | None = None) -> int:
        # to mypy TestClient's base is httpx2, not installed here: its answers are Any
        answer = TestClient(app, client=(host, 50000)).get("/metrics", headers=headers)
        code: int = answer.status_code
        return code

    # no token: this machine only; the test client's host ("testclient") is not loopback
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics").json()["error"] == "not_found"
    assert [status(h) for h in ("127.0.0.1", "127.8.9.10", "::1")] == [200, 200, 200]
    assert [status(h) for h in ("10.0.0.5", "192.168.1.20", "2001:db8::1")] == [404, 404, 404]

    token = "a-scraper-token-of-some-length"
    monkeypatch.setattr(app.state.settings, "metrics_token", token)
    good, bad = {"Authorization": f"Bearer {token}"}, {"Authorization": "Bearer wrong-token"}
    assert status("10.0.0.5", good) == 200
    assert status("10.0.0.5", bad) == 404
    assert status("10.0.0.5") == 404
    assert status("127.0.0.1") == 404  # with a token, this machine sends it too

    monkeypatch.setattr(app.state.settings, "metrics_enabled", False)
    assert status("10.0.0.5", good) == 404
    assert status("127.0.0.1", good) == 404


def test_openapi_and_its_docs_page_are_served_locally(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/readers/register" in spec["paths"] and spec["info"]["title"] == "Biblioverse"
    # the sections in the order a reader of the docs meets them, whatever the routes' order
    tags = [t["name"] for t in spec["tags"]]
    assert tags[:5] == ["accounts", "libraries", "readers", "catalog", "circulation"]
    used = {t for op in spec["paths"].values() for o in op.values() for t in o.get("tags", [])}
    assert used <= set(tags)
    page = client.get("/api/docs")
    assert page.status_code == 200 and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "http" not in page.text.split("<body>")[1].replace("/api/v1", "")  # no CDN
    assert client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_security_headers_on_pages_and_api(client: TestClient) -> None:
    for path in ("/", "/api/v1/libraries"):
        h = client.get(path).headers
        assert h["x-content-type-options"] == "nosniff"
        assert h["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "script-src 'self'" in h["content-security-policy"]


def test_unknown_api_route_is_json_and_unknown_page_is_html(client: TestClient) -> None:
    api = client.get("/api/v1/nowhere")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")
    page = client.get("/nowhere", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "<h1>Not found</h1>" in page.text


def test_wrong_method_is_405_in_the_error_shape(client: TestClient) -> None:
    r = client.delete("/api/v1/libraries")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


def test_request_log_names_the_route_not_the_card(
    client: TestClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    token = client.post(
        "/api/v1/auth/token", json={"kind": "staff", "login": "admin", "password": STAFF_PW}
    ).json()["access_token"]
    with caplog.at_level(logging.INFO, logger="biblioverse.access"):
        client.get(
            "/api/v1/readers/by-card/CARD000002", headers={"Authorization": f"Bearer {token}"}
        )
    assert "GET /api/v1/readers/by-card/{card_number} 200" in caplog.text
    assert "CARD000002" not in caplog.text


def test_metrics_count_a_trusted_proxys_client_not_the_proxy(
    database_url: str, tmp_path: Path
) -> None:
    app = create_app(
        Settings(
            database_url=database_url,
            data_dir=tmp_path,
            secret_key="test-secret-key-not-for-production",
            offline_check_s=0,
            trusted_proxies="127.0.0.1",
        )
    )
    proxy = TestClient(app, client=("127.0.0.1", 50000))
    assert proxy.get("/metrics").status_code == 200
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    assert proxy.get("/metrics", headers=forwarded).status_code == 404
