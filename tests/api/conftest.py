"""API fixtures: the demo-like world and signed-in clients."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse.deps import get_now
from tests import factories
from tests.factories import READER_PW, STAFF_PW, World


@pytest.fixture()
def world(session: Session, client: TestClient, app: FastAPI) -> World:
    app.dependency_overrides[get_now] = lambda: factories.NOW
    return factories.world(session)


def token_for(client: TestClient, kind: str, login: str, password: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"kind": kind, "login": login, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture()
def as_staff(client: TestClient, world: World) -> Callable[[str], dict[str, str]]:
    return lambda username: token_for(client, "staff", username, STAFF_PW)


@pytest.fixture()
def as_reader(client: TestClient, world: World) -> Callable[[str], dict[str, str]]:
    return lambda card: token_for(client, "reader", card, READER_PW)


def in_library(client: TestClient, phone: dict[str, str], library_id: int, code: str) -> str:
    """The ticket a reader's phone gets for scanning a library's "you are here" sign (the
    library's ``here_code``): sent with a loan by phone there (ADR 0040)."""
    r = client.post(
        "/api/v1/circulation/presence",
        json={"library_id": library_id, "code": code},
        headers=phone,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["ticket"])
