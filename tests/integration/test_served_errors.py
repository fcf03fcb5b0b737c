"""An unhandled error on a real uvicorn server: the 500 is a complete answer and the
keep-alive connection it came on still serves the client's next request."""

from __future__ import annotations

import http.client
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.types import Receive, Scope, Send

from biblioverse.app import ContainErrors, create_app
from biblioverse.libraries import ClosedDay
from biblioverse.settings import Settings
from tests import factories
from tests.factories import STAFF_PW, World
from tests.serving import served_app


@pytest.fixture()
def world(session: Session) -> World:
    return factories.world(session)


@pytest.fixture()
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    app: FastAPI = create_app(
        Settings(
            database_url=database_url,
            data_dir=tmp_path,
            secret_key="test-secret-key-not-for-production",
            offline_check_s=0,
        )
    )

    @app.get("/api/v1/test-only/boom")
    def boom() -> None:
        raise RuntimeError("a bug in a handler")

    with served_app(app) as address:
        yield address


def _token(host: str, port: int) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    body = json.dumps({"kind": "staff", "login": "admin", "password": STAFF_PW})
    conn.request("POST", "/api/v1/auth/token", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200
    token = str(json.loads(r.read())["access_token"])
    conn.close()
    return token


def _closed_days(session: Session, world: World) -> list[str]:
    session.expire_all()
    days = session.scalars(select(ClosedDay.day).where(ClosedDay.org_unit_id == world.central.id))
    return [d.isoformat() for d in days]


def test_the_request_after_a_500_on_the_same_connection_is_served(
    server: tuple[str, int], world: World, session: Session
) -> None:
    host, port = server
    token = _token(host, port)
    # http.client keeps one connection and opens another only when told Connection: close;
    # it never retries a request the server dropped.
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/api/v1/test-only/boom")
    first = conn.getresponse()
    assert first.status == 500
    assert json.loads(first.read())["error"] == "internal_error"

    conn.request(
        "POST",
        f"/api/v1/libraries/{world.central.id}/closed-days",
        json.dumps({"day": "2026-12-25", "reason_en": "Christmas"}),
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    second = conn.getresponse()
    assert second.status == 201, second.read()
    second.read()
    conn.close()
    assert _closed_days(session, world) == ["2026-12-25"]


def test_a_request_pipelined_behind_a_500_is_served(
    server: tuple[str, int], world: World, session: Session
) -> None:
    host, port = server
    token = _token(host, port)
    body = json.dumps({"day": "2026-12-26", "reason_en": "Boxing Day"}).encode()
    requests = (
        b"GET /api/v1/test-only/boom HTTP/1.1\r\nHost: x\r\n\r\n"
        + f"POST /api/v1/libraries/{world.central.id}/closed-days HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    received = b""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(requests)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", received) == [b"500", b"201"], received
    assert _closed_days(session, world) == ["2026-12-26"]


def test_an_error_before_any_answer_gets_a_500_that_closes_the_connection() -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("the error table itself failed")

    r = TestClient(ContainErrors(broken)).get("/anything")
    assert r.status_code == 500
    assert r.json()["error"] == "internal_error"
    assert r.headers["connection"] == "close"
