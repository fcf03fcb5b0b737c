"""The permission matrix of the pages: every page route, asked by every kind of person
signed in with a page session, gets the answer this table says. A new page without a row
fails the test.

The records are the central library's and its reader's, as in the API's matrix
(tests/api/matrix_world.py). The columns:

    anon  not signed in               adm   the consortium's administrator
    rdr   the reader whose records    lib   librarian of the central library
          these are                   cat   cataloguer of the central library
    oth   another reader              cir   circulation desk of the central library
                                      xlib  librarian of another library (the airport)
                                      xcir  circulation desk of another library

    ok    the page answers: 2xx, a redirect elsewhere than the sign-in page, or 409 when an
          earlier person already changed the record
    422   let in; the form is shown again with what to correct (for another library's staff:
          "choose one of your libraries")
    in    sent to the sign-in page     no    sent back with the reason it was refused
    403   not for this person          404   not theirs to see
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse import sip2
from biblioverse.circulation import console as circulation_console
from biblioverse.deps import get_now
from tests.api import matrix_world
from tests.api.matrix_support import compare, fill, observing, read_table, routes_of
from tests.factories import NOW, READER_PW, STAFF_PW

PEOPLE = (
    ("anonymous", "anon", None),
    ("reader", "rdr", ("reader", "CARD000001", READER_PW)),
    ("other-reader", "oth", ("reader", "CARD000002", READER_PW)),
    ("admin", "adm", ("staff", "admin", STAFF_PW)),
    ("central-lib", "lib", ("staff", "central-lib", STAFF_PW)),
    ("cataloguer", "cat", ("staff", "cataloguer", STAFF_PW)),
    ("central-desk", "cir", ("staff", "central-desk", STAFF_PW)),
    ("airport-lib", "xlib", ("staff", "airport-lib", STAFF_PW)),
    ("airport-desk", "xcir", ("staff", "airport-desk", STAFF_PW)),
)
COLUMNS = [short for _, short, _ in PEOPLE]
NOT_PAGES = {"/health", "/metrics", "/api/docs", "/api/v1/openapi.json"}

PATH_VALUES = {
    "record_id": "{record}",
    "item_id": "{item}",
    "hold_id": "{hold}",
    "loan_id": "{loan}",
    "courier_id": "{courier}",
    "alarm_id": "{alarm}",
    "account_id": "{sip2_account}",
    "device_id": "{robot}",
    "inventory_id": "{inventory}",
    "unit_id": "{central}",
    "library_id": "{central}",
    "rule_id": "{rule}",
    "transit_id": "{transit}",
    "fee_id": "{fee}",
    "reader_id": "{pending_reader}",
    "step": "cancel",
    "kind": "misplaced",
    "code": "ENTRANCE",
}
STEPS = {"POST /staff/alarms/{alarm_id}/{step}": "acknowledge"}
# The reader record (issue 29) is the central reader's, whose loan, hold and fee these are.
RECORD = "/staff/readers/{reader_id}"
RECORD_ROUTES = [
    f"GET {RECORD}",
    f"GET {RECORD}/receipt",
    *(
        f"POST {RECORD}/{tail}"
        for tail in (
            "block",
            "card/renew",
            "contact",
            "fees/{fee_id}/waive",
            "holds/{hold_id}/cancel",
            "holds/{hold_id}/pickup",
            "notes",
            "pay",
            "renew",
            "unblock",
        )
    ),
]
PATHS: dict[str, dict[str, str]] = {r: {"reader_id": "{reader}"} for r in RECORD_ROUTES}
QUERY: dict[str, dict[str, Any]] = {
    "GET /catalog": {"q": "matrix"},
    "GET /catalog/facet/subject": {"q": "matrix"},
    "GET /catalog/suggest": {"q": "matr"},
    "GET /lang/{code}": {"next": "/"},
    "GET /libraries/{library_id}/map": {"to": "item:{item}"},
    "GET /staff/readers/find": {"card": "CARD000001"},
}
# what each person creates is their own, so that a second one is not refused as a duplicate
CATEGORY = {"adm": "student", "lib": "visitor"}
RULE_FORM = {**circulation_console._rule_values(None, None), "org_unit_id": "{central}"}
FORM: dict[str, dict[str, Any]] = {
    "POST /account/courier": {
        "loan_id": "{loan}",
        "address": "1 Library Road, Chaoyang",
        "pickup_at": "2026-11-19T10:00",
    },
    "POST /account/settings": {"phone": "13800000000", "email": "reader1@example.org"},
    "POST /borrow": {"barcode": "M3", "library_id": "{central}"},
    "POST /catalog/records/{record_id}/hold": {"pickup_library_id": "{central}"},
    "POST /register": {
        "name": "New Reader",
        "birth_date": "1990-01-01",
        "category": "adult",
        "home_library_id": "{central}",
        "email": "page.{who}@example.org",
        "password": "a-long-password-2026",
        "password2": "a-long-password-2026",
    },
    "POST /signin": {"login": "central-desk", "password": STAFF_PW},
    "POST /staff/alarms/{alarm_id}/{step}": {"note": "checked"},
    "POST /staff/catalog/items/{item_id}": {"call_number": "A 2"},
    "POST /staff/catalog/records/new": {"title": "A page record"},
    "POST /staff/catalog/records/{record_id}": {"title": "Matrix title, by page"},
    "POST /staff/catalog/records/{record_id}/items": {
        "barcode": "P-{who}",
        "library_id": "{central}",
    },
    "POST /staff/desk/checkin": {"barcode": "M1", "library_id": "{central}"},
    "POST /staff/desk/checkout": {
        "card_number": "CARD000001",
        "barcode": "M3",
        "library_id": "{central}",
    },
    "POST /staff/devices/new": {
        "name": "Page kiosk",
        "login": "page-kiosk-{who}",
        "password": "kiosk-password-2026",
        "org_unit_id": "{central}",
        "kind": "kiosk",
        "charset": "utf-8",
        "locale": "en",
    },
    "POST /staff/devices/keys/new": {
        "name": "Gate {who}",
        "kind": "gate",
        "org_unit_id": "{central}",
    },
    "POST /staff/devices/keys/{device_id}/retire": {"confirm": "retire"},
    "POST /staff/devices/{account_id}": {
        "name": "The kiosk",
        "login": "matrix-kiosk",
        "org_unit_id": "{central}",
        "kind": "kiosk",
        "charset": "utf-8",
        "locale": "en",
    },
    "POST /staff/floor-plans": {"library": "{central}"},
    "POST /staff/inventories": {"library": "{central}", "scope": "library"},
    "POST /staff/inventories/{inventory_id}/close": {},
    # a whole row of the matrix, as the form shows a new one
    "POST /staff/rules/new": {**RULE_FORM, "reader_category": "{category}"},
    "POST /staff/rules/{rule_id}": {**RULE_FORM, "reader_category": "child"},
    # the reader record: destructive steps confirmed
    f"POST {RECORD}/block": {"reason": "matrix", "confirm": "yes"},
    f"POST {RECORD}/contact": {"email": "reader1@example.org", "phone": "13800000000"},
    f"POST {RECORD}/fees/{{fee_id}}/waive": {
        "reason": "matrix",
        "amount": "1.00",
        "confirm": "yes",
    },
    f"POST {RECORD}/holds/{{hold_id}}/cancel": {"confirm": "yes"},
    f"POST {RECORD}/holds/{{hold_id}}/pickup": {"pickup_library_id": "{central}"},
    f"POST {RECORD}/notes": {"text": "matrix note"},
    f"POST {RECORD}/pay": {"amount": "0.50"},
    f"POST {RECORD}/unblock": {"reason": "matrix"},
}

# fmt: off
TABLE = """
#                                             anon rdr  oth  adm  lib  cat  cir  xlib xcir
GET /                                         ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /account                                  in   ok   ok   in   in   in   in   in   in
GET /account/courier                          in   ok   ok   in   in   in   in   in   in
POST /account/courier                         in   ok   404  in   in   in   in   in   in
POST /account/courier/{courier_id}/cancel     in   ok   no   in   in   in   in   in   in
GET /account/data.json                        401  ok   ok   401  401  401  401  401  401
POST /account/holds/{hold_id}/{step}          in   ok   no   in   in   in   in   in   in
POST /account/loans/{loan_id}/renew           in   ok   no   in   in   in   in   in   in
POST /account/settings                        in   ok   422  in   in   in   in   in   in
GET /borrow                                   in   ok   ok   in   in   in   in   in   in
POST /borrow                                  in   ok   ok   in   in   in   in   in   in
GET /catalog                                  ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /catalog/facet/subject                    ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /catalog/records/{record_id}              ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /catalog/records/{record_id}/hold         in   ok   ok   in   in   in   in   in   in
POST /catalog/records/{record_id}/hold        in   ok   ok   in   in   in   in   in   in
GET /catalog/suggest                          ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /favicon.ico                              ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /lang/{code}                              ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /libraries/{library_id}/3d                ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /libraries/{library_id}/map               ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /libraries/{library_id}/signs             ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /libraries/{library_id}/signs/{code}.svg  ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /libraries/{library_id}/signs/new-code   in   403  403  ok   ok   403  403  403  403
GET /register                                 ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /register                                ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /signin                                   ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /signin                                  ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /signout                                 ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /staff                                    in   403  403  ok   ok   ok   ok   ok   ok
GET /staff/alarms/badge                       ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /staff/alarms/{alarm_id}/{step}          in   403  403  ok   ok   403  ok   404  404
GET /staff/audit                              in   403  403  ok   ok   403  403  ok   403
GET /staff/building                           in   403  403  ok   ok   403  ok   ok   ok
GET /staff/building/live                      in   403  403  ok   ok   403  ok   ok   ok
GET /staff/catalog                            in   403  403  ok   ok   ok   403  ok   403
GET /staff/catalog/items/{item_id}            in   403  403  ok   ok   ok   403  ok   403
POST /staff/catalog/items/{item_id}           in   403  403  ok   ok   ok   403  403  403
GET /staff/catalog/records/new                in   403  403  ok   ok   ok   403  ok   403
POST /staff/catalog/records/new               in   403  403  ok   ok   ok   403  ok   403
GET /staff/catalog/records/{record_id}        in   403  403  ok   ok   ok   403  ok   403
POST /staff/catalog/records/{record_id}       in   403  403  ok   ok   ok   403  ok   403
POST /staff/catalog/records/{record_id}/items in   403  403  ok   ok   ok   403  422  403
POST /staff/couriers/{courier_id}/collect     in   403  403  ok   ok   403  ok   403  403
GET /staff/desk                               in   403  403  ok   ok   403  ok   ok   ok
POST /staff/desk/checkin                      in   403  403  ok   ok   403  ok   403  403
POST /staff/desk/checkout                     in   403  403  ok   ok   403  ok   403  403
GET /staff/devices                            in   403  403  ok   403  403  403  403  403
GET /staff/devices/new                        in   403  403  ok   403  403  403  403  403
POST /staff/devices/new                       in   403  403  ok   403  403  403  403  403
GET /staff/devices/keys/new                   in   403  403  ok   403  403  403  403  403
POST /staff/devices/keys/new                  in   403  403  ok   403  403  403  403  403
GET /staff/devices/keys/{device_id}           in   403  403  ok   403  403  403  403  403
GET /staff/devices/keys/{device_id}/retire    in   403  403  ok   403  403  403  403  403
POST /staff/devices/keys/{device_id}/retire   in   403  403  ok   403  403  403  403  403
POST /staff/devices/keys/{device_id}/rotate   in   403  403  ok   403  403  403  403  403
GET /staff/devices/{account_id}               in   403  403  ok   403  403  403  403  403
POST /staff/devices/{account_id}              in   403  403  ok   403  403  403  403  403
GET /staff/devices/{account_id}/log           in   403  403  ok   403  403  403  403  403
GET /staff/floor-plans                        in   403  403  ok   ok   403  403  ok   403
POST /staff/floor-plans                       in   403  403  ok   ok   403  403  403  403
POST /staff/inventories                       in   403  403  ok   ok   ok   403  403  403
GET /staff/inventories/{inventory_id}.csv     in   403  403  ok   ok   ok   403  404  403
POST /staff/inventories/{inventory_id}/close  in   403  403  ok   ok   ok   403  404  403
GET /staff/libraries                          in   403  403  ok   ok   ok   ok   ok   ok
GET /staff/readers                            in   403  403  ok   ok   403  ok   ok   ok
POST /staff/readers/{reader_id}/activate      in   403  403  ok   ok   403  ok   ok   ok
GET /staff/rules                              in   403  403  ok   ok   403  ok   ok   ok
GET /staff/rules/new                          in   403  403  ok   ok   403  403  ok   403
POST /staff/rules/new                         in   403  403  ok   ok   403  403  403  403
GET /staff/rules/{rule_id}                    in   403  403  ok   ok   403  403  403  403
POST /staff/rules/{rule_id}                   in   403  403  ok   ok   403  403  403  403
GET /staff/shelves                            in   403  403  ok   ok   ok   403  ok   403
GET /staff/shelves/live                       in   403  403  ok   ok   ok   403  ok   403
GET /staff/shelves/{unit_id}/{kind}.csv       in   403  403  ok   ok   ok   403  404  403
GET /staff/transits                           in   403  403  ok   ok   403  ok   ok   ok
POST /staff/transits/{transit_id}/ship        in   403  403  ok   ok   403  ok   ok   ok
GET /twin/items/{item_id}/card                ok   ok   ok   ok   ok   ok   ok   ok   ok
"""
# The reader record (issue 29, ADR 0025 and 0036): another library's desk (xlib, xcir) opens
# it by card and serves the reader, but does not change the card, and does not see the
# central library's hold and fee. The receipt asks for a payment there is none of: 404.
RECORD_TABLE = """
#                                                          anon rdr  oth  adm  lib  cat  cir  xlib xcir
GET /staff/readers/find                                    in   403  403  ok   ok   403  ok   ok   ok
GET /staff/readers/{reader_id}                             in   403  403  ok   ok   403  ok   ok   ok
GET /staff/readers/{reader_id}/receipt                     in   403  403  404  404  403  404  404  404
POST /staff/readers/{reader_id}/block                      in   403  403  ok   ok   403  ok   403  403
POST /staff/readers/{reader_id}/card/renew                 in   403  403  ok   ok   403  ok   403  403
POST /staff/readers/{reader_id}/contact                    in   403  403  ok   ok   403  ok   403  403
POST /staff/readers/{reader_id}/fees/{fee_id}/waive        in   403  403  ok   ok   403  403  404  404
POST /staff/readers/{reader_id}/holds/{hold_id}/cancel     in   403  403  ok   ok   403  ok   404  404
POST /staff/readers/{reader_id}/holds/{hold_id}/pickup     in   403  403  ok   ok   403  ok   404  404
POST /staff/readers/{reader_id}/notes                      in   403  403  ok   ok   403  ok   403  403
POST /staff/readers/{reader_id}/pay                        in   403  403  ok   ok   403  ok   ok   ok
POST /staff/readers/{reader_id}/renew                      in   403  403  ok   ok   403  ok   ok   ok
POST /staff/readers/{reader_id}/unblock                    in   403  403  ok   ok   403  ok   403  403
"""
# fmt: on


def expected() -> dict[str, dict[str, str]]:
    return read_table(TABLE + RECORD_TABLE, COLUMNS)


def page_routes(app: FastAPI) -> list[str]:
    """Every route that is not the API's, as 'METHOD /path'."""
    found: set[str] = set()
    for route in app.router.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for r in contexts() if contexts else [route]:
            path = getattr(r, "path_format", None) or getattr(r, "path", "")
            if not path or path.startswith(("/api/", "/static")) or path in NOT_PAGES:
                continue
            for method in set(getattr(r, "methods", None) or ()) - {"HEAD"}:
                found.add(f"{method} {path}")
    return sorted(found)


def outcome(r: Any) -> str:
    if r.is_redirect and r.headers.get("location", "").startswith("/signin"):
        return "in"
    if r.is_redirect and "refused=" in r.headers.get("location", ""):
        return "no"
    if r.status_code < 400 or r.status_code == 409:
        return "ok"
    return str(r.status_code)


def _csrf(page: TestClient) -> str:
    for path in ("/account", "/staff", "/signin", "/"):
        m = re.search(r'name="csrf_token" value="([^"]+)"', page.get(path).text)
        if m:
            return m.group(1)
    raise AssertionError("no page with a CSRF field")


def _signed_in(app: FastAPI, login: tuple[str, str, str] | None) -> tuple[TestClient, str]:
    page = TestClient(app, base_url="http://testserver")
    if login is not None:
        _kind, name, password = login  # the page finds the person by the login alone
        token = _csrf(page)
        r = page.post(
            "/signin",
            data={"csrf_token": token, "login": name, "password": password},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    return page, _csrf(page)


def test_every_page_has_a_row(app: FastAPI) -> None:
    rows, pages = expected(), page_routes(app)
    assert not [p for p in pages if p not in rows], "pages without a row in the matrix"
    assert not [p for p in rows if p not in pages], "rows for pages that no longer exist"


@pytest.mark.parametrize("route", routes_of(page_routes))
def test_who_may_open(client: TestClient, app: FastAPI, session: Session, route: str) -> None:
    app.dependency_overrides[get_now] = lambda: NOW
    want = expected().get(route)
    assert want is not None or observing(), f"{route} has no row in the matrix"
    world = matrix_world.build(session)
    account, _ = sip2.create_sip2_account(
        session,
        None,
        sip2.Sip2AccountInput("The kiosk", "matrix-kiosk", world.w.central.id, "kiosk-pw-2026"),
        at=NOW,
    )
    world.ids["sip2_account"] = account.id
    session.commit()
    method, template = route.split(" ", 1)
    values = {**PATH_VALUES, "step": STEPS.get(route, PATH_VALUES["step"]), **PATHS.get(route, {})}
    url = template.format(**{k: fill(v, world.ids) for k, v in values.items()})
    query = fill(QUERY.get(route), world.ids)
    got: dict[str, str] = {}
    # Those who should be refused go first, so that no allowed change hides their answer.
    if want is not None:
        order = sorted(PEOPLE, key=lambda p: want[p[1]] == "ok")
    else:
        order = sorted(PEOPLE, key=lambda p: p[1] not in ("anon", "oth", "cat", "xlib", "xcir"))
    for _, short, login in order:
        page, csrf = _signed_in(app, login)
        if method == "GET":
            r = page.get(url, params=query, follow_redirects=False)
        else:
            mine = {**world.ids, "who": short, "category": CATEGORY.get(short, "staff")}
            form = {"csrf_token": csrf, **fill(FORM.get(route, {}), mine)}
            files = {"plan": ("plan.json", json.dumps(world.ids["plan"]))}
            r = page.post(
                url,
                params=query,
                data=form,
                files=files if route == "POST /staff/floor-plans" else None,
                follow_redirects=False,
            )
        assert r.status_code < 500, f"{route} as {short}: {r.status_code} {r.text[:300]}"
        got[short] = outcome(r)
    compare(route, want, got, COLUMNS)
