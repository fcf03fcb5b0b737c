"""Builders for test data, through the real services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, circulation, libraries, readers
from biblioverse.access import Actor, Grant, PrincipalKind, Role
from biblioverse.libraries import OrgKind, Period, UnitInput

NOW = dt.datetime(2026, 11, 18, 6, 0, tzinfo=dt.UTC)  # a Wednesday, 14:00 in Beijing
STAFF_PW = "staff-password-1"
READER_PW = "reader-password"


@dataclass
class World:
    consortium: libraries.OrgUnit
    central: libraries.OrgUnit
    airport: libraries.OrgUnit
    community: libraries.OrgUnit
    admin: accounts.StaffUser
    central_librarian: accounts.StaffUser
    airport_librarian: accounts.StaffUser
    community_librarian: accounts.StaffUser
    airport_desk: accounts.StaffUser
    cataloguer: accounts.StaffUser
    reader_central: readers.Reader
    reader_community: readers.Reader

    def actor(self, session: Session, staff: accounts.StaffUser) -> Actor:
        return accounts.actor_for_staff(session, staff)


def unit(
    session: Session,
    kind: OrgKind,
    code: str,
    parent: libraries.OrgUnit | None,
    isil: str | None = None,
) -> libraries.OrgUnit:
    return libraries.create_unit(
        session,
        None,
        UnitInput(
            kind,
            code,
            f"{code.title()} Library",
            f"{code}图书馆",
            parent_id=parent.id if parent else None,
            isil=isil,
        ),
        at=NOW,
    )


def staff(
    session: Session, username: str, role: Role, where: libraries.OrgUnit
) -> accounts.StaffUser:
    return accounts.create_staff(
        session,
        None,
        username=username,
        full_name=username.title(),
        password=STAFF_PW,
        home_org_unit_id=where.id,
        roles=[(role, where.id)],
        at=NOW,
    )


def reader(session: Session, home: libraries.OrgUnit, n: int, **kw: object) -> readers.Reader:
    system = Actor(PrincipalKind.STAFF, 0, grants=(Grant(Role.ADMIN, "/", 0),))
    data = readers.NewReader(
        name=f"Reader {n}",
        birth_date=dt.date(1990, 1, n % 28 + 1),
        category="adult",
        home_library_id=home.id,
        email=f"reader{n}@example.org",
        password=READER_PW,
        card_number=f"CARD{n:06d}",
        pin="1357",
    )
    for k, v in kw.items():
        setattr(data, k, v)
    return readers.create_by_staff(session, system, data, at=NOW)


def world(session: Session) -> World:
    consortium = unit(session, OrgKind.CONSORTIUM, "consortium", None)
    central = unit(session, OrgKind.LIBRARY, "central", consortium, isil="CN-T0001")
    airport = unit(session, OrgKind.BRANCH, "airport", central, isil="CN-T0001-A")
    community = unit(session, OrgKind.BRANCH, "community", central)
    for u in (central, airport, community):
        libraries.set_weekly_hours(
            session, None, u, {wd: [Period(9 * 60, 21 * 60)] for wd in range(7)}, at=NOW
        )
    w = World(
        consortium=consortium,
        central=central,
        airport=airport,
        community=community,
        admin=staff(session, "admin", Role.ADMIN, consortium),
        central_librarian=staff(session, "central-lib", Role.LIBRARIAN, central),
        airport_librarian=staff(session, "airport-lib", Role.LIBRARIAN, airport),
        community_librarian=staff(session, "community-lib", Role.LIBRARIAN, community),
        airport_desk=staff(session, "airport-desk", Role.CIRCULATION, airport),
        cataloguer=staff(session, "cataloguer", Role.CATALOGUER, central),
        reader_central=reader(session, central, 1),
        reader_community=reader(session, community, 2),
    )
    session.commit()
    return w


def copies(
    session: Session,
    w: World,
    title: str,
    barcodes: Sequence[str],
    library: libraries.OrgUnit | None = None,
    item_type: str = "book",
) -> list[catalog.Item]:
    """A record catalogued by the cataloguer, with copies of these barcodes at ``library``
    (the central library unless said)."""
    record = catalog.save_record(
        session, w.actor(session, w.cataloguer), None, catalog.RecordForm(title=title), at=NOW
    )
    owner = (library or w.central).id
    data = [catalog.NewItem(record.id, b, owner, item_type) for b in barcodes]
    return catalog.add_items(session, None, data, at=NOW)


def lend(
    session: Session,
    actor: Actor | None,
    reader: readers.Reader,
    barcode: str,
    where: libraries.OrgUnit,
    *,
    at: dt.datetime = NOW,
    **kw: Any,
) -> circulation.Loan:
    """``reader`` borrows the copy ``barcode`` at library ``where``, lent by ``actor`` (None:
    the system); by phone, the phone is in that library."""
    if kw.get("channel") == "mobile":
        kw.setdefault("present_at", where.id)
    return circulation.checkout(
        session, actor, reader_id=reader.id, barcode=barcode, at_unit_id=where.id, at=at, **kw
    )


def rule(session: Session, w: World, unit: libraries.OrgUnit | None = None, **policy: Any) -> None:
    """A circulation rule with this policy for any reader and any copy at ``unit`` (the
    consortium, so everywhere, unless said)."""
    circulation.save_rule(
        session,
        None,
        circulation.RuleInput(
            (unit or w.consortium).id, name="rule", policy=circulation.Policy(**policy)
        ),
        at=NOW,
    )
