"""The permission matrix of the whole API, generated from its OpenAPI document: every
operation, called by every kind of caller, gets the answer this table says. A new endpoint
without a row fails the test, so whoever adds one decides who may call it.

Every record the operations name belongs to the central library and its reader
(tests/api/matrix_world.py). The columns:

    anon  anonymous                    adm   the consortium's administrator
    rdr   the reader whose records     lib   librarian of the central library
          these are                    cat   cataloguer of the central library
    oth   another reader               cir   circulation desk of the central library
    kio pad gat she sor sen rob scr    xlib  librarian of another library (the airport)
          a device key of each kind    xcir  circulation desk of another library

    ok    allowed: 2xx, or 409 when an earlier caller already changed the record
    401   sign in first        403   not for this caller        404   not theirs to see
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from biblioverse.deps import get_now
from tests.api import matrix_world
from tests.api.matrix_support import compare, observing, read_table, request_for, routes_of
from tests.factories import NOW

COLUMNS = [short for _, short in matrix_world.PRINCIPALS]
FIRST = {"anonymous", "other-reader", "airport-lib", "airport-desk", "cataloguer"}
FIRST |= {who for who, _ in matrix_world.PRINCIPALS if who.startswith("device:")}

# fmt: off
TABLE = """
#                                                             anon rdr  oth  kio  pad  gat  she  sor  sen  rob  scr  adm  lib  cat  cir  xlib xcir
GET /api/v1/alarms/{alarm_id}                                 401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   404  404
POST /api/v1/alarms/{alarm_id}/acknowledge                    401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   404  404
POST /api/v1/alarms/{alarm_id}/resolve                        401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   404  404
GET /api/v1/audit                                             401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  ok   403
DELETE /api/v1/auth/token                                     401  ok   ok   403  403  403  403  403  403  403  403  ok   ok   ok   ok   ok   ok
POST /api/v1/auth/token                                       ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /api/v1/catalog/export                                    ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /api/v1/catalog/items                                    401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  403  403
GET /api/v1/catalog/items/{item_id}                           ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
PATCH /api/v1/catalog/items/{item_id}                         401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  403  403
POST /api/v1/catalog/records                                  401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  ok   403
GET /api/v1/catalog/records/{record_id}                       ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
PUT /api/v1/catalog/records/{record_id}                       401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  ok   403
GET /api/v1/catalog/search                                    ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /api/v1/catalog/suggest                                   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /api/v1/circulation/checkin                              401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/circulation/checkout                             401  ok   403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
GET /api/v1/circulation/courier-returns                       401  ok   403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/circulation/courier-returns                      401  ok   403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/circulation/courier-returns/{courier_id}/cancel  401  ok   404  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/circulation/courier-returns/{courier_id}/collect 401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
GET /api/v1/circulation/explain                               401  ok   403  403  403  403  403  403  403  403  403  ok   ok   403  ok   ok   ok
POST /api/v1/circulation/presence                             401  ok   ok   403  403  403  403  403  403  403  403  403  403  403  403  403  403
GET /api/v1/circulation/fees                                  401  ok   403  403  403  403  403  403  403  403  403  ok   ok   403  ok   ok   ok
POST /api/v1/circulation/fees/{fee_id}/waive                  401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  403  403
GET /api/v1/circulation/holds                                 401  ok   403  403  403  403  403  403  403  403  403  ok   ok   403  ok   ok   ok
POST /api/v1/circulation/holds                                401  ok   403  403  403  403  403  403  403  403  403  ok   ok   403  ok   ok   ok
POST /api/v1/circulation/holds/{hold_id}/cancel               401  ok   404  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
PUT /api/v1/circulation/holds/{hold_id}/pickup                401  ok   404  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/circulation/holds/{hold_id}/resume               401  ok   404  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/circulation/holds/{hold_id}/suspend              401  ok   404  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/circulation/loans/{loan_id}/renew                401  ok   404  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/circulation/payments                             401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   ok   ok
GET /api/v1/circulation/pull-list                             401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
GET /api/v1/circulation/rules                                 401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   ok   ok   ok
POST /api/v1/circulation/rules                                401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  403  403
PUT /api/v1/circulation/rules/{rule_id}                       401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  403  403
GET /api/v1/circulation/transits                              401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/circulation/transits/{transit_id}/ship           401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   ok   ok
POST /api/v1/devices                                          401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
GET /api/v1/devices/me                                        401  403  403  ok   ok   ok   ok   ok   ok   ok   ok   403  403  403  403  403  403
POST /api/v1/devices/me/heartbeat                             401  403  403  ok   ok   ok   ok   ok   ok   ok   ok   403  403  403  403  403  403
POST /api/v1/devices/me/readings                              401  403  403  403  403  403  403  403  ok   403  403  403  403  403  403  403  403
POST /api/v1/devices/me/tags                                  401  403  403  403  403  403  ok   403  403  403  403  403  403  403  403  403  403
POST /api/v1/devices/{device_id}/antennas                     401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
PUT /api/v1/devices/{device_id}/zone                          401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
POST /api/v1/devices/{device_id}/key                          401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
POST /api/v1/devices/{device_id}/retire                       401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
POST /api/v1/gates/check                                      401  403  403  403  403  ok   403  403  403  403  403  403  403  403  403  403  403
GET /api/v1/inventories/{inventory_id}                        401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  404  403
POST /api/v1/inventories/{inventory_id}/close                 401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  404  403
POST /api/v1/inventories/{inventory_id}/reads                 401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  404  403
GET /api/v1/inventories/{inventory_id}/report                 401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  404  403
GET /api/v1/items/{barcode}/where                             ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /api/v1/items/{item_id}/spot                              ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /api/v1/libraries                                         ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /api/v1/libraries                                        401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
GET /api/v1/libraries/{library_id}/find                       404  404  404  404  404  404  404  404  404  404  404  404  404  404  404  404  404
GET /api/v1/libraries/{library_id}/floor-plan                 ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
PUT /api/v1/libraries/{library_id}/floor-plan                 401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  403  403
GET /api/v1/libraries/{library_id}/route                      ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /api/v1/libraries/{library_id}/scene                      ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /api/v1/libraries/{unit_id}                               ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /api/v1/libraries/{unit_id}/alarms                        401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
GET /api/v1/libraries/{unit_id}/closed-days                   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /api/v1/libraries/{unit_id}/closed-days                  401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
PUT /api/v1/libraries/{unit_id}/hours                         401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
GET /api/v1/libraries/{unit_id}/inventories                   401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  403  403
POST /api/v1/libraries/{unit_id}/inventories                  401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  403  403
GET /api/v1/libraries/{unit_id}/linkage-rules                 401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
POST /api/v1/libraries/{unit_id}/linkage-rules                401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
GET /api/v1/libraries/{unit_id}/locations                     ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /api/v1/libraries/{unit_id}/locations                    401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
GET /api/v1/libraries/{unit_id}/opening                       ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /api/v1/libraries/{unit_id}/reconciliation                401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  403  403
GET /api/v1/libraries/{unit_id}/shelf-reports/{kind}          401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  403  403
GET /api/v1/libraries/{unit_id}/shelves                       ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
POST /api/v1/libraries/{unit_id}/shelves                      401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
GET /api/v1/libraries/{unit_id}/zones                         401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
DELETE /api/v1/linkage-rules/{rule_id}                        401  403  403  403  403  403  403  403  403  403  403  ok   403  403  403  403  403
PUT /api/v1/locations/{location_id}/thresholds/{metric}       401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  403  403
GET /api/v1/me                                                401  ok   ok   403  403  403  403  403  403  403  403  ok   ok   ok   ok   ok   ok
GET /api/v1/readers                                           401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   ok   ok
POST /api/v1/readers                                          401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
GET /api/v1/readers/by-card/{card_number}                     401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   ok   ok
GET /api/v1/readers/me                                        401  ok   ok   403  403  403  403  403  403  403  403  403  403  403  403  403  403
PATCH /api/v1/readers/me                                      401  ok   ok   403  403  403  403  403  403  403  403  403  403  403  403  403  403
POST /api/v1/readers/register                                 ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
GET /api/v1/readers/{reader_id}                               401  ok   403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
PATCH /api/v1/readers/{reader_id}                             401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
POST /api/v1/readers/{reader_id}/activate                     401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   ok   ok
POST /api/v1/rfid/bind                                        401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  403  403
POST /api/v1/rfid/decode                                      401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  ok   403
POST /api/v1/rfid/encode                                      401  403  403  403  403  403  403  403  403  403  403  ok   ok   ok   403  ok   403
GET /api/v1/staff                                             401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  ok   403
POST /api/v1/staff                                            401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  403  403
GET /api/v1/staff/{staff_id}                                  401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  ok   403  403
PATCH /api/v1/staff/{staff_id}                                401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  403  403
DELETE /api/v1/staff/{staff_id}/grants                        401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  403  403
POST /api/v1/staff/{staff_id}/grants                          401  403  403  403  403  403  403  403  403  403  403  ok   ok   403  403  403  403
GET /health                                                   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok   ok
"""
# fmt: on


def expected() -> dict[str, dict[str, str]]:
    return read_table(TABLE, COLUMNS)


def operations(app: FastAPI) -> list[str]:
    doc = app.openapi()
    return sorted(
        f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method in ops
    )


def outcome(status: int) -> str:
    if status < 400 or status == 409:
        return "ok"
    return str(status)


def test_every_operation_has_a_row(app: FastAPI) -> None:
    rows = expected()
    missing = [op for op in operations(app) if op not in rows]
    stale = [op for op in rows if op not in operations(app)]
    assert not missing, f"operations without a row in the matrix: {missing}"
    assert not stale, f"rows for operations that no longer exist: {stale}"


@pytest.mark.parametrize("operation", routes_of(operations))
def test_who_may_call(client: TestClient, app: FastAPI, session: Session, operation: str) -> None:
    app.dependency_overrides[get_now] = lambda: NOW
    want = expected().get(operation)
    assert want is not None or observing(), f"{operation} has no row in the matrix"
    world = matrix_world.build(session)
    got: dict[str, str] = {}
    # Those who should be refused go first: a record an allowed caller created or changed
    # would otherwise answer them 409, which would hide whether they were let through.
    if want is not None:
        order = sorted(matrix_world.PRINCIPALS, key=lambda p: want[p[1]] == "ok")
    else:
        order = sorted(matrix_world.PRINCIPALS, key=lambda p: p[0] not in FIRST)
    for who, short in order:
        method, url, query, body = request_for(operation, world.ids)
        r = client.request(method, url, params=query, json=body, headers=world.headers[who])
        got[short] = outcome(r.status_code)
        assert r.status_code < 500, f"{operation} as {who}: {r.status_code} {r.text}"
    compare(operation, want, got, COLUMNS)
