"""One login field finds the person: a staff user name, a reader's card number or e-mail, on
the sign-in page and at the token endpoint without ``kind`` (ADR 0035)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse.access import Role
from biblioverse.accounts import service
from biblioverse.accounts.errors import BadCredentials
from biblioverse.demo import demo_card
from tests import factories
from tests.api.test_pages import csrf_of
from tests.factories import READER_PW, STAFF_PW, World

TOKEN = "/api/v1/auth/token"


def page_sign_in(client: TestClient, login: str, password: str) -> tuple[int, str]:
    """The page's answer: its status and where it sends the browser, or its text."""
    token = csrf_of(client.get("/signin").text)
    r = client.post(
        "/signin",
        data={"csrf_token": token, "login": login, "password": password},
        follow_redirects=False,
    )
    return r.status_code, r.headers.get("location", r.text)


def api_sign_in(client: TestClient, login: str, password: str) -> tuple[int, dict[str, object]]:
    r = client.post(TOKEN, json={"login": login, "password": password})
    body = r.json()
    return r.status_code, body["principal"] if r.status_code == 200 else body


@pytest.mark.parametrize(
    ("login", "password", "kind"),
    [
        ("CARD000001", READER_PW, "reader"),
        (" reader1@EXAMPLE.org ", READER_PW, "reader"),
        ("Airport-Desk", STAFF_PW, "staff"),
    ],
)
def test_one_field_signs_in_readers_by_card_or_email_and_staff_by_user_name(
    client: TestClient, world: World, login: str, password: str, kind: str
) -> None:
    status, where = page_sign_in(client, login, password)
    assert (status, where) == (303, "/staff" if kind == "staff" else "/account")
    expected = world.airport_desk.id if kind == "staff" else world.reader_central.id
    status, principal = api_sign_in(client, login, password)
    assert status == 200 and (principal["kind"], principal["id"]) == (kind, expected)


def test_the_page_has_one_login_field_and_no_choice_of_kind(client: TestClient) -> None:
    html = client.get("/signin").text
    assert 'name="login"' in html and 'name="password"' in html
    assert 'name="kind"' not in html and 'type="radio"' not in html


def test_an_unknown_login_and_a_wrong_password_get_the_same_answer(
    client: TestClient, world: World
) -> None:
    def error(login: str) -> tuple[int, str]:
        status, html = page_sign_in(client, login, "wrong")
        found = re.search(r'<p class="form-error"[^>]*>([^<]*)</p>', html)
        return status, found.group(1) if found else html

    pages = {error(login) for login in ("ghost", "CARD000001", "admin", "x@example.org")}
    assert pages == {(401, "Wrong card number, e-mail, user name or password.")}
    answers = [
        client.post(TOKEN, json={"login": login, "password": "wrong"})
        for login in ("ghost", "nobody@example.org", "CARD000001", "admin", "reader1@example.org")
    ]
    assert {r.status_code for r in answers} == {401}
    assert len({r.text for r in answers}) == 1


def test_as_many_passwords_are_checked_whether_or_not_the_login_exists(
    session: Session, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str | None] = []

    def counting(stored: str | None, secret: str) -> bool:
        checked.append(stored)
        return False

    monkeypatch.setattr(service, "verify_secret", counting)
    policy = service.ThrottlePolicy(account_failures=100, address_failures=100)
    counts = {}
    for login in ("admin", "card000001", "ghost-user", "reader1@example.org", "x@example.org"):
        checked.clear()
        with pytest.raises(BadCredentials):
            service.authenticate(
                session, login=login, secret="x", address="a", at=factories.NOW, policy=policy
            )
        counts[login] = len(checked)
    # a login shaped like a user name is tried as staff and as a reader; an e-mail only as one
    assert counts == {
        "admin": 2,
        "card000001": 2,
        "ghost-user": 2,
        "reader1@example.org": 1,
        "x@example.org": 1,
    }


def test_guesses_at_the_one_field_still_lock_the_account(client: TestClient, world: World) -> None:
    for login in ("CARD000001", "reader1@example.org", "CARD000001", "READER1@example.org"):
        assert api_sign_in(client, login, "guess")[0] == 401
    assert page_sign_in(client, "CARD000001", "guess")[0] == 401
    status, text = page_sign_in(client, "reader1@example.org", READER_PW)
    assert status == 429 and "Too many failed attempts" in text
    assert api_sign_in(client, "CARD000001", READER_PW)[0] == 429
    as_reader = {"kind": "reader", "login": "CARD000001", "password": READER_PW}
    assert client.post(TOKEN, json=as_reader).status_code == 429
    for _ in range(5):  # a staff user name locks the same way
        assert api_sign_in(client, "cataloguer", "guess")[0] == 401
    assert api_sign_in(client, "cataloguer", STAFF_PW)[0] == 429
    # a login that names no one has one count, whichever kind it was tried as
    for kind in ("staff", "reader", None, "staff", "reader"):  # None: sent as null
        body = {"kind": kind, "login": "Ghost", "password": "guess"}
        assert client.post(TOKEN, json=body).status_code == 401
    assert api_sign_in(client, "ghost", "guess")[0] == 429


@pytest.fixture()
def twins(session: Session, world: World) -> tuple[int, int, str]:
    """A reader whose card number is also a staff member's user name."""
    card = demo_card(7)
    reader = factories.reader(session, world.central, 7, card_number=card)
    staff = factories.staff(session, card, Role.CIRCULATION, world.central)
    session.commit()
    return reader.id, staff.id, card


def test_a_login_naming_staff_and_a_reader_signs_in_the_one_whose_password_it_is(
    client: TestClient, twins: tuple[int, int, str]
) -> None:
    reader_id, staff_id, card = twins
    status, principal = api_sign_in(client, card, READER_PW)
    assert status == 200 and (principal["kind"], principal["id"]) == ("reader", reader_id)
    status, principal = api_sign_in(client, card, STAFF_PW)
    assert status == 200 and (principal["kind"], principal["id"]) == ("staff", staff_id)
    assert page_sign_in(client, card, READER_PW) == (303, "/account")
    client.cookies.clear()
    assert page_sign_in(client, card, STAFF_PW) == (303, "/staff")
    unknown = client.post(TOKEN, json={"login": "ghost", "password": "wrong"})
    wrong = client.post(TOKEN, json={"login": card, "password": "wrong"})
    assert (wrong.status_code, wrong.text) == (unknown.status_code, unknown.text)


def test_a_right_password_for_one_twin_does_not_count_against_the_other(
    client: TestClient, twins: tuple[int, int, str]
) -> None:
    _, _, card = twins
    for _ in range(8):
        assert api_sign_in(client, card, STAFF_PW)[0] == 200
    status, principal = api_sign_in(client, card, READER_PW)
    assert status == 200 and principal["kind"] == "reader"


def test_guesses_at_a_login_naming_both_count_against_both(
    client: TestClient, twins: tuple[int, int, str]
) -> None:
    _, _, card = twins
    for _ in range(5):
        assert api_sign_in(client, card, "guess")[0] == 401
    for kind, password in (("reader", READER_PW), ("staff", STAFF_PW)):
        body = {"kind": kind, "login": card, "password": password}
        assert client.post(TOKEN, json=body).status_code == 429


def test_the_same_password_for_both_signs_in_the_staff_member(
    session: Session, client: TestClient, world: World
) -> None:
    card = demo_card(8)
    factories.reader(session, world.central, 8, card_number=card, password=STAFF_PW)
    staff = factories.staff(session, card, Role.CIRCULATION, world.central)
    session.commit()
    status, principal = api_sign_in(client, card, STAFF_PW)
    assert status == 200 and (principal["kind"], principal["id"]) == ("staff", staff.id)
    body = {"kind": "reader", "login": card, "password": STAFF_PW}
    assert client.post(TOKEN, json=body).json()["principal"]["kind"] == "reader"
