"""A library's units, readers and copies created through the services, as tests/factories.py
does, for the circulation and SIP2 benchmarks (not a benchmark: ``make bench`` skips
``_*.py``)."""

from __future__ import annotations

import datetime as dt

import _harness  # noqa: F401  (before biblioverse: it puts this checkout's src/ on the path)
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, circulation, libraries, readers
from biblioverse.access import Actor, Role
from biblioverse.libraries import OrgKind, UnitInput


def unit(
    session: Session, kind: OrgKind, code: str, parent: int | None, at: dt.datetime
) -> libraries.OrgUnit:
    """An org unit named after its code ("central": "Central Library", "central图书馆")."""
    data = UnitInput(kind, code, f"{code.title()} Library", f"{code}图书馆", parent_id=parent)
    return libraries.create_unit(session, None, data, at=at)


def staff(
    session: Session,
    username: str,
    password: str,
    role: Role,
    unit_id: int,
    at: dt.datetime,
    *,
    full_name: str = "Bench Staff",
) -> accounts.StaffUser:
    """A staff member with one role at ``unit_id`` (also their home library)."""
    return accounts.create_staff(
        session,
        None,
        username=username,
        full_name=full_name,
        password=password,
        home_org_unit_id=unit_id,
        roles=[(role, unit_id)],
        at=at,
    )


def generous_rule(
    session: Session, consortium_id: int, at: dt.datetime, *, max_loans: int, max_holds: int
) -> circulation.CirculationRule:
    """One rule for the whole consortium that no benchmark's load reaches the limits of."""
    policy = circulation.Policy(max_loans=max_loans, max_holds=max_holds)
    data = circulation.RuleInput(consortium_id, name="Bench: generous", policy=policy)
    return circulation.save_rule(session, None, data, at=at)


def reader(
    session: Session, actor: Actor, n: int, *, name: str, card: str, home: int, at: dt.datetime
) -> int:
    """An adult reader, registered at the desk; its id."""
    data = readers.NewReader(
        name=name,
        birth_date=dt.date(1990, 1, n % 28 + 1),
        category="adult",
        home_library_id=home,
        card_number=card,
    )
    return readers.create_by_staff(session, actor, data, at=at).id


def copies(
    session: Session, actor: Actor, title: str, barcodes: list[str], unit_id: int, at: dt.datetime
) -> list[str]:
    """A record with one copy per barcode at ``unit_id``; the barcodes."""
    record = catalog.save_record(session, actor, None, catalog.RecordForm(title=title), at=at)
    catalog.add_items(
        session, None, [catalog.NewItem(record.id, b, unit_id) for b in barcodes], at=at
    )
    return barcodes
