"""The generated permission matrices' shared parts: their tables read, the app whose routes
they cover, what a run compares; and what the API's matrix sends for each operation (path
values naming the central library's records, and a valid query and body, so that a caller
who is allowed gets an answer, 2xx or 409 once an earlier caller changed the record, and one
who is not gets 401, 403 or 404, never a 422 that would hide the question)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from biblioverse.app import create_app
from biblioverse.settings import Settings


def read_table(table: str, columns: list[str]) -> dict[str, dict[str, str]]:
    """The rows of a matrix: 'METHOD /path' to each column's expected answer."""
    rows: dict[str, dict[str, str]] = {}
    for line in table.strip().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        method, path, *answers = line.split()
        assert len(answers) == len(columns), f"{method} {path}: {len(answers)} answers"
        rows[f"{method} {path}"] = dict(zip(columns, answers, strict=True))
    return rows


def routes_of(listing: Callable[[FastAPI], list[str]]) -> list[str]:
    """What ``listing`` finds in an app made for the purpose, when the tests are collected."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), secret_key="collecting", offline_check_s=0)
        return listing(create_app(settings))


def observing() -> str | None:
    """BIBLIOVERSE_MATRIX_OBSERVE=FILE: write each row as it stands instead of comparing, for a
    reviewer to read against the table."""
    return os.environ.get("BIBLIOVERSE_MATRIX_OBSERVE")


def compare(
    route: str, want: dict[str, str] | None, got: dict[str, str], columns: list[str]
) -> None:
    where = observing()
    if where:
        with Path(where).open("a") as out:
            out.write(f"{route} {' '.join(got[c] for c in columns)}\n")
        return
    assert want is not None, f"{route} has no row in the matrix"
    wrong = {c: f"{got[c]} (want {want[c]})" for c in columns if got[c] != want[c]}
    assert not wrong, f"{route}: {wrong}"


# Path parameters by name; where one name means different records, by operation below.
PATH_VALUES = {
    "unit_id": "central",
    "library_id": "central",
    "reader_id": "reader",
    "card_number": "card",
    "staff_id": "staff",
    "record_id": "record",
    "item_id": "item",
    "barcode": "barcode",
    "loan_id": "loan",
    "hold_id": "hold",
    "courier_id": "courier",
    "transit_id": "transit",
    "fee_id": "fee",
    "location_id": "location",
    "alarm_id": "alarm",
    "inventory_id": "inventory",
}
PATH_BY_OPERATION = {
    "PUT /api/v1/circulation/rules/{rule_id}": {"rule_id": "rule"},
    "DELETE /api/v1/linkage-rules/{rule_id}": {"rule_id": "linkage_rule"},
    "POST /api/v1/devices/{device_id}/antennas": {"device_id": "shelf_reader"},
    "PUT /api/v1/devices/{device_id}/zone": {"device_id": "sensor"},
    "POST /api/v1/devices/{device_id}/key": {"device_id": "robot"},
    "POST /api/v1/devices/{device_id}/retire": {"device_id": "robot"},
    "GET /api/v1/libraries/{unit_id}/shelf-reports/{kind}": {"kind": "misplaced"},
    "POST /api/v1/readers/{reader_id}/activate": {"reader_id": "pending_reader"},
    "PUT /api/v1/locations/{location_id}/thresholds/{metric}": {"metric": "humidity"},
}

# Query and body by operation: "{name}" stands for the record of that name.
QUERY: dict[str, dict[str, Any]] = {
    "GET /api/v1/catalog/search": {"q": "matrix"},
    "GET /api/v1/catalog/suggest": {"q": "matr"},
    "GET /api/v1/catalog/export": {"q": "matrix"},
    "GET /api/v1/circulation/explain": {"reader_id": "{reader}", "item_id": "{item}"},
    "GET /api/v1/circulation/holds": {"reader_id": "{reader}"},
    "GET /api/v1/circulation/fees": {"reader_id": "{reader}"},
    "GET /api/v1/circulation/courier-returns": {"reader_id": "{reader}"},
    "GET /api/v1/circulation/transits": {"library_id": "{central}"},
    "GET /api/v1/circulation/pull-list": {"library_id": "{central}"},
    "GET /api/v1/libraries/{library_id}/route": {"from": "poi:ENTRANCE", "to": "item:{item}"},
    # public; 404 is "no copy found", whatever the search index holds from earlier tests
    "GET /api/v1/libraries/{library_id}/find": {"q": "qzxnothingfound"},
}
_RULE = {"org_unit_id": "{central}", "reader_category": "student", "name": "students"}
_TAGS = {"seq": 1, "ts": "2026-11-18T05:59:00Z", "type": "snapshot", "antenna": 1, "tags": []}
_READING = {
    "seq": 1,
    "ts": "2026-11-18T05:59:00Z",
    "readings": [{"metric": "humidity", "value": 50}],
}
BODY: dict[str, Any] = {
    "POST /api/v1/circulation/rules": _RULE,
    "PUT /api/v1/circulation/rules/{rule_id}": {**_RULE, "reader_category": "child"},
    "POST /api/v1/circulation/checkout": {
        "reader_id": "{reader}",
        "barcode": "M3",
        "library_id": "{central}",
    },
    "POST /api/v1/circulation/checkin": {"barcode": "M1", "library_id": "{central}"},
    "POST /api/v1/circulation/presence": {"library_id": "{central}", "code": "not-its-code"},
    "POST /api/v1/circulation/holds": {
        "reader_id": "{reader}",
        "record_id": "{wanted}",
        "pickup_library_id": "{central}",
    },
    "POST /api/v1/circulation/holds/{hold_id}/suspend": {"until": None},
    "PUT /api/v1/circulation/holds/{hold_id}/pickup": {"pickup_library_id": "{central}"},
    "POST /api/v1/circulation/courier-returns": {
        "reader_id": "{reader}",
        "loan_ids": ["{loan}"],
        "address": "2 Library Road",
        "pickup_at": "2026-11-20T02:00:00Z",
    },
    "POST /api/v1/circulation/payments": {"reader_id": "{reader}", "amount": "1.00"},
    "POST /api/v1/circulation/fees/{fee_id}/waive": {"amount": "1.00", "note": "goodwill"},
    "POST /api/v1/auth/token": {
        "kind": "staff",
        "login": "central-desk",
        "password": "staff-password-1",
    },
    "PATCH /api/v1/readers/me": {"phone": "13800000000"},
    "POST /api/v1/staff": {
        "username": "new-desk",
        "full_name": "New Desk",
        "password": "a-long-password-2026",
        "home_org_unit_id": "{central}",
    },
    "PATCH /api/v1/staff/{staff_id}": {"full_name": "Renamed"},
    "POST /api/v1/staff/{staff_id}/grants": {"role": "cataloguer", "org_unit_id": "{central}"},
    "DELETE /api/v1/staff/{staff_id}/grants": {"role": "circulation", "org_unit_id": "{central}"},
    "POST /api/v1/devices": {"name": "New kiosk", "kind": "kiosk", "org_unit_id": "{central}"},
    "POST /api/v1/libraries": {
        "kind": "branch",
        "parent_id": "{central}",
        "code": "new",
        "name_en": "New",
        "name_zh": "新",
    },
    "PUT /api/v1/libraries/{unit_id}/hours": {
        "hours": {"0": [{"opens": "09:00", "closes": "21:00"}]}
    },
    "POST /api/v1/libraries/{unit_id}/closed-days": {"day": "2026-12-25"},
    "POST /api/v1/libraries/{unit_id}/locations": {
        "code": "2F-B",
        "floor": 2,
        "zone": "B",
        "name_en": "Room B",
        "name_zh": "B 室",
    },
    "POST /api/v1/readers/register": {
        "name": "New Reader",
        "birth_date": "1990-01-01",
        "category": "adult",
        "home_library_id": "{central}",
        "email": "new.reader@example.org",
        "password": "a-long-password-2026",
    },
    "POST /api/v1/readers": {
        "name": "Desk Reader",
        "birth_date": "1990-01-01",
        "category": "adult",
        "home_library_id": "{central}",
    },
    "PATCH /api/v1/readers/{reader_id}": {"category": "student"},
    "PUT /api/v1/catalog/records/{record_id}": {"title": "Matrix title, revised"},
    "POST /api/v1/catalog/records": {"title": "A new record"},
    "PATCH /api/v1/catalog/items/{item_id}": {"call_number": "A 1"},
    "POST /api/v1/catalog/items": {
        "record_id": "{record}",
        "barcode": "M9",
        "library_id": "{central}",
    },
    "POST /api/v1/devices/me/tags": _TAGS,
    "POST /api/v1/devices/me/heartbeat": {"seq": 1, "ts": "2026-11-18T05:59:00Z"},
    "POST /api/v1/gates/check": {"tags": ["E280116000000000000000FF"]},
    "POST /api/v1/rfid/encode": {"barcode": "M3"},
    "POST /api/v1/rfid/decode": {"data": "{tag_data}"},
    "POST /api/v1/rfid/bind": {"barcode": "M3", "tag": "E28011600000000000000042"},
    "POST /api/v1/libraries/{unit_id}/shelves": {
        "location_id": "{location}",
        "code": "A-2",
        "first_call": "A",
        "last_call": "Z",
    },
    "POST /api/v1/devices/{device_id}/antennas": {"antenna": 2, "shelf_id": "{shelf}", "level": 2},
    "POST /api/v1/libraries/{unit_id}/inventories": {"scope": "library"},
    "POST /api/v1/inventories/{inventory_id}/reads": {"shelf": "A-1", "barcodes": ["M3"]},
    "POST /api/v1/inventories/{inventory_id}/close": {"mark_missing": False},
    "POST /api/v1/devices/me/readings": _READING,
    "PUT /api/v1/devices/{device_id}/zone": {"location_id": "{location}"},
    "PUT /api/v1/locations/{location_id}/thresholds/{metric}": {"low": 40, "high": 60},
    "POST /api/v1/alarms/{alarm_id}/resolve": {"note": "checked"},
    "POST /api/v1/libraries/{unit_id}/linkage-rules": {
        "name": "Tell the desk too",
        "actions": [{"type": "notify", "to": "desk@example.org"}],
    },
    "PUT /api/v1/libraries/{library_id}/floor-plan": "{plan}",
}


def fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, str) and "{" in value:
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def request_for(operation: str, ids: dict[str, Any]) -> tuple[str, str, Any, Any]:
    """(method, url, query, body) of ``operation`` ('GET /api/v1/...')."""
    method, template = operation.split(" ", 1)
    names = {**PATH_VALUES, **PATH_BY_OPERATION.get(operation, {})}
    values = {
        name: ids.get(value, value) for name, value in names.items() if "{" + name + "}" in template
    }
    url = template.format(**values)
    return method, url, fill(QUERY.get(operation), ids), fill(BODY.get(operation), ids)
