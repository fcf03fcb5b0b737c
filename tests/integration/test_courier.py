"""Courier returns: the reader books a courier for their loans, in its service hours, and pays
the logistics fee when it collects;
fines stop at the pickup time asked for; the copies are in transit until a library scans
them in."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, circulation, i18n, libraries, readers
from biblioverse.circulation import courier, errors, fees, notices
from biblioverse.circulation.holds import Action
from biblioverse.circulation.lifecycle import IllegalTransition
from biblioverse.circulation.models import CourierReturn, Fee, Notice, Transit
from biblioverse.errors import PermissionDenied, ValidationFailed
from tests import factories
from tests.factories import World

NOW = factories.NOW  # Wednesday 18 November 2026, 14:00 in Beijing
BEIJING = dt.timezone(dt.timedelta(hours=8))
DUE = dt.datetime(2026, 12, 2, 21, 0, tzinfo=BEIJING)  # 14 days on, at closing
PICKUP = dt.datetime(2026, 12, 5, 10, 0, tzinfo=BEIJING)  # three days late


def _setup(session: Session) -> tuple[World, list[circulation.Loan]]:
    """The community branch's reader has a copy of the central library and one of the
    airport branch on loan, due 2 December; the airport charges more for a courier."""
    w = factories.world(session)
    factories.rule(session, w, loan_days=14, fine_per_day=Decimal("0.50"), fine_cap=Decimal("20"))
    factories.rule(
        session,
        w,
        w.airport,
        loan_days=14,
        fine_per_day=Decimal("0.50"),
        courier_fee=Decimal("8.00"),
    )
    factories.copies(session, w, "Sent back by courier", ["C-1"], library=w.central)
    factories.copies(session, w, "Also sent back", ["A-1"], library=w.airport)
    desk = w.actor(session, w.admin)
    loans = [
        factories.lend(session, desk, w.reader_community, code, w.community)
        for code in ("C-1", "A-1")
    ]
    assert all(x.due_at == DUE for x in loans)
    session.commit()
    return w, loans


def _book(session: Session, w: World, loans: list[circulation.Loan], **kw: object) -> CourierReturn:
    args: dict[str, object] = {
        "reader_id": w.reader_community.id,
        "loan_ids": [x.id for x in loans],
        "address": "  12 Garden Road,\n Flat 3  ",
        "pickup_at": PICKUP,
        "at": DUE + dt.timedelta(hours=20),
    }
    args.update(kw)
    return courier.request(session, accounts.actor_for_reader(w.reader_community), **args)  # type: ignore[arg-type]


def test_a_courier_return_from_booking_to_arrival(session: Session) -> None:
    w, loans = _setup(session)
    row = _book(session, w, loans)
    session.commit()

    # One trip, one fee: the highest of the loans' rules, quoted now, charged at pickup.
    assert row.fee_amount == Decimal("8.00") and row.fee_id is None
    assert fees.balance(session, w.reader_community.id) == Decimal("0.00")
    assert row.address == "12 Garden Road, Flat 3" and row.to_unit_id == w.community.id
    assert all(x.status == "open" for x in loans)  # still the reader's until collected

    # The courier is late; the daily job stops the fines at the pickup time asked for,
    # does not call the loans overdue, and does not declare them lost.
    late = PICKUP + dt.timedelta(days=5)
    fees.accrue(session, late)
    assert notices.daily(session, late) == 0
    overdue = session.scalars(select(Fee).where(Fee.kind == "overdue")).all()
    assert sorted(f.amount for f in overdue) == [Decimal("1.50"), Decimal("1.50")]
    session.commit()

    # Collected: the loans end, fines as of the pickup time, the copies travel.
    collector = w.actor(session, w.community_librarian)
    courier.collect(session, collector, row.id, at=late)
    session.commit()
    assert row.status == "collected" and row.collected_at == late
    fee = session.get(Fee, row.fee_id)
    assert fee is not None and (fee.kind, fee.amount) == ("logistics", Decimal("8.00"))
    assert fee.created_at == late and fee.org_unit_id == w.community.id
    for loan in loans:
        session.refresh(loan)
        assert loan.status == "returned" and loan.returned_unit_id == w.community.id
    overdue = session.scalars(select(Fee).where(Fee.kind == "overdue")).all()
    assert sorted(f.amount for f in overdue) == [Decimal("1.50"), Decimal("1.50")]
    moving = session.scalars(select(Transit).order_by(Transit.id)).all()
    assert [(t.from_unit_id, t.to_unit_id, t.reason, t.status) for t in moving] == [
        (None, w.community.id, "courier", "shipped")
    ] * 2
    assert {catalog.get_item(session, x.item_id).status for x in loans} == {"in_transit"}
    assert fees.accrue(session, late + dt.timedelta(days=3)).overdue_loans == 0

    # The community branch scans the central copy in: received, then sent on home.
    done = circulation.checkin(
        session,
        collector,
        barcode="C-1",
        at_unit_id=w.community.id,
        at=late + dt.timedelta(hours=4),
    )
    assert done.loan is None and done.routing.action is Action.TRANSIT
    assert done.routing.unit_id == w.central.id
    assert row.status == "collected"  # the airport copy is still on its way
    # The airport copy was dropped at the airport instead: its transit ends there and it
    # is shelved at home; the request is delivered.
    airport_desk = w.actor(session, w.airport_librarian)
    done = circulation.checkin(
        session,
        airport_desk,
        barcode="A-1",
        at_unit_id=w.airport.id,
        at=late + dt.timedelta(hours=5),
    )
    assert done.routing.action is Action.SHELVE and done.item.status == "available"
    assert row.status == "delivered" and row.closed_at == late + dt.timedelta(hours=5)
    session.commit()

    # The reader was told, per copy, where each arrived.
    told = session.scalars(select(Notice).where(Notice.kind == "arrived").order_by(Notice.id)).all()
    assert [(n.reader_id, n.unit_id, n.title) for n in told] == [
        (w.reader_community.id, w.community.id, "Sent back by courier"),
        (w.reader_community.id, w.airport.id, "Also sent back"),
    ]
    units = libraries.unit_names(session)
    i18n.set_locale("en")
    text = notices.words(told[0], units, "Asia/Shanghai")
    assert text.subject == "Received: Sent back by courier"
    assert "reached Community Library" in text.body


def test_fines_stop_when_collected_before_the_time_asked_for(session: Session) -> None:
    w, loans = _setup(session)
    row = _book(session, w, loans[:1])
    early = PICKUP - dt.timedelta(days=2)  # the courier came a day after the due date
    courier.collect(session, w.actor(session, w.central_librarian), row.id, at=early)
    (fine,) = session.scalars(select(Fee).where(Fee.kind == "overdue")).all()
    assert fine.amount == Decimal("0.50")
    assert fees.balance(session, w.reader_community.id) == Decimal("5.50")  # fine + fee


def test_bad_requests_name_the_field_and_write_nothing(session: Session) -> None:
    w, loans = _setup(session)
    before = fees.balance(session, w.reader_community.id)
    at = DUE + dt.timedelta(hours=20)
    cases: list[tuple[dict[str, object], set[str]]] = [
        ({"loan_ids": []}, {"loan_ids"}),
        ({"address": "  x "}, {"address"}),
        ({"address": "y" * 501}, {"address"}),
        ({"pickup_at": at - dt.timedelta(minutes=1)}, {"pickup_at"}),
        ({"pickup_at": at + dt.timedelta(days=31)}, {"pickup_at"}),
        ({"pickup_at": dt.datetime(2026, 12, 5, 10, 0)}, {"pickup_at"}),  # no UTC offset
        # the courier's service hours are the home library's opening hours, 09:00-21:00
        ({"pickup_at": dt.datetime(2026, 12, 5, 8, 59, tzinfo=BEIJING)}, {"pickup_at"}),
        ({"pickup_at": dt.datetime(2026, 12, 5, 21, 0, tzinfo=BEIJING)}, {"pickup_at"}),
        ({"loan_ids": [], "address": ""}, {"loan_ids", "address"}),
    ]
    for kw, fields in cases:
        with pytest.raises(ValidationFailed) as bad:
            _book(session, w, loans, **kw)
        assert {e.field for e in bad.value.errors} == fields, kw
    # Another reader's loan, a loan that does not exist, a returned loan: not found.
    other = factories.copies(session, w, "Someone else's", ["X-1"])[0]
    theirs = circulation.checkout(
        session,
        w.actor(session, w.admin),
        reader_id=w.reader_central.id,
        barcode="X-1",
        at_unit_id=w.central.id,
        at=NOW,
    )
    assert other.status == "on_loan"
    for ids in ([loans[0].id, theirs.id], [loans[0].id, 999_999]):
        with pytest.raises(errors.LoanNotFound):
            _book(session, w, loans, loan_ids=ids)
    # Booked once; a second booking of the same loan is refused.
    _book(session, w, loans[:1])
    with pytest.raises(errors.CourierAlreadyRequested):
        _book(session, w, loans)
    assert session.scalar(select(func.count()).select_from(CourierReturn)) == 1
    assert fees.balance(session, w.reader_community.id) == before  # charged at pickup
    with pytest.raises(ValidationFailed) as closed:
        _book(session, w, loans[1:], pickup_at=dt.datetime(2026, 12, 5, 22, 0, tzinfo=BEIJING))
    (problem,) = closed.value.errors
    assert (problem.field, problem.code) == ("pickup_at", "outside_service_hours")


def test_cancel_charges_nothing_and_only_the_destination_library_collects(
    session: Session,
) -> None:
    w, loans = _setup(session)
    row = _book(session, w, loans)
    with pytest.raises(PermissionDenied):  # a sibling branch's librarian
        courier.collect(session, w.actor(session, w.airport_librarian), row.id, at=PICKUP)
    with pytest.raises(errors.CourierReturnNotFound):  # another reader's is not theirs to see
        courier.cancel(session, accounts.actor_for_reader(w.reader_central), row.id, at=PICKUP)
    courier.cancel(session, accounts.actor_for_reader(w.reader_community), row.id, at=PICKUP)
    assert row.status == "cancelled"
    assert fees.balance(session, w.reader_community.id) == Decimal("0.00")
    with pytest.raises(IllegalTransition):
        courier.collect(session, w.actor(session, w.community_librarian), row.id, at=PICKUP)
    # The loans can be booked again, and the fines run again past the old pickup time.
    fees.accrue(session, PICKUP + dt.timedelta(days=2))
    assert {
        f.amount for f in fees.fees_of(session, w.reader_community.id) if f.kind == "overdue"
    } == {Decimal("2.50")}
    again = _book(session, w, loans, at=PICKUP, pickup_at=PICKUP + dt.timedelta(days=1))
    assert again.status == "requested"


def test_loans_brought_back_at_a_desk_meanwhile_are_left_alone(session: Session) -> None:
    w, loans = _setup(session)
    row = _book(session, w, loans)
    desk = w.actor(session, w.community_librarian)
    circulation.checkin(session, desk, barcode="C-1", at_unit_id=w.community.id, at=PICKUP)
    circulation.checkin(session, desk, barcode="A-1", at_unit_id=w.community.id, at=PICKUP)
    courier.collect(session, desk, row.id, at=PICKUP + dt.timedelta(hours=1))
    assert row.status == "delivered" and row.fee_id is None  # nothing travelled, no fee
    assert (
        session.scalar(select(func.count()).select_from(Transit).where(Transit.reason == "courier"))
        == 0
    )


def test_addresses_are_forgotten_after_the_anonymisation_period(session: Session) -> None:
    w, loans = _setup(session)
    row = _book(session, w, loans)
    courier.cancel(session, None, row.id, at=PICKUP)
    circulation.anonymise(session, PICKUP + dt.timedelta(days=29), after_days=30)
    assert row.address != ""
    circulation.anonymise(session, PICKUP + dt.timedelta(days=31), after_days=30)
    session.refresh(row)
    assert row.address == ""


def test_a_readers_data_file_is_their_card_then_each_registered_section(session: Session) -> None:
    w, loans = _setup(session)
    row = _book(session, w, loans)
    asked: list[int] = []

    def another_context(_s: Session, reader_id: int) -> dict[str, list[dict[str, object]]]:
        asked.append(reader_id)
        return {"elsewhere": []}

    me = accounts.actor_for_reader(w.reader_community)
    data = readers.export_data(
        session, me, at=NOW, sections=[circulation.reader_data, another_context]
    )
    assert list(data) == [
        "exported_at",
        "reader",
        *("loans", "reading_history", "holds", "fees", "courier_returns"),
        "elsewhere",
    ]
    assert asked == [w.reader_community.id]
    assert data["reader"]["home_library"] == w.community.code
    assert sorted(x["barcode"] for x in data["loans"]) == ["A-1", "C-1"]
    assert data["fees"] == []  # the courier's fee is charged when it collects
    assert [c["fee"] for c in data["courier_returns"]] == ["8.00"]
    assert [c["address"] for c in data["courier_returns"]] == [row.address]
    # Only a reader exports, and only their own card.
    with pytest.raises(PermissionDenied):
        readers.export_data(session, w.actor(session, w.admin), at=NOW, sections=[])
