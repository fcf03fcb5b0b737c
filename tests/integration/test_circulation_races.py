"""Circulation under concurrency and random use, on SQLite and PostgreSQL.

64 clients race to borrow, return and hold the same 100 copies; a property test runs random
sequences of checkouts, returns, holds, cancellations and transits. After every step (and
after the race) the invariants hold: no copy is on loan twice, a copy's status agrees with
its loans, holds and transits, every acknowledged change is in the database, and each
title's queue is numbered 1..n without gaps or repeats."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from biblioverse import catalog, circulation
from biblioverse.circulation import holds
from biblioverse.circulation.models import Hold, Loan, Transit
from biblioverse.db import make_session_factory
from biblioverse.errors import DomainError
from tests import factories
from tests.factories import World

NOW = factories.NOW
ACTIVE = ("waiting", "suspended", "in_transit", "ready")


def check_invariants(session: Session) -> None:
    """What must be true of the circulation tables whatever happened before."""
    session.expire_all()
    open_per_item = Counter(
        session.scalars(select(Loan.item_id).where(Loan.returned_at.is_(None))).all()
    )
    assert all(n == 1 for n in open_per_item.values()), "a copy is on loan twice"
    transits = Counter(
        session.scalars(
            select(Transit.item_id).where(Transit.status.in_(["created", "shipped"]))
        ).all()
    )
    assert all(n == 1 for n in transits.values()), "a copy is in two transits"
    trapped = Counter(
        session.scalars(
            select(Hold.trapped_item_id).where(Hold.status.in_(["in_transit", "ready"]))
        ).all()
    )
    assert all(n == 1 for n in trapped.values()), "a copy is set aside for two holds"
    for item in session.scalars(select(catalog.Item)):
        on_loan = item.id in open_per_item
        assert (item.status in ("on_loan", "lost")) == on_loan, (item.barcode, item.status)
        if item.status == "in_transit":
            assert item.id in transits, item.barcode
        if item.id in transits:
            assert item.status == "in_transit", item.barcode
    holders = Counter(
        session.execute(select(Hold.reader_id, Hold.record_id).where(Hold.status.in_(ACTIVE))).all()
    )
    assert all(n == 1 for n in holders.values()), "two active holds of one reader on a title"
    for record_id in session.scalars(select(Hold.record_id).distinct()):
        queued = session.scalars(
            select(Hold).where(
                Hold.record_id == record_id, Hold.status.in_(["waiting", "suspended"])
            )
        ).all()
        positions = sorted(holds.queue_position(session, h) or 0 for h in queued)
        assert positions == list(range(1, len(queued) + 1)), (record_id, positions)


def setup(session: Session, n_items: int, n_readers: int) -> tuple[World, list[int], list[str]]:
    w = factories.world(session)
    circulation.save_rule(
        session,
        None,
        circulation.RuleInput(
            w.consortium.id, name="default", policy=circulation.Policy(max_loans=50, max_holds=50)
        ),
        at=NOW,
    )
    barcodes: list[str] = []
    titles = max(1, n_items // 4)
    for t in range(titles):  # four copies a title, spread over the three libraries
        codes = [f"R{t:03d}-{c}" for c in range(4)]
        places = [w.central, w.airport, w.community, w.central]
        record = catalog.save_record(
            session,
            w.actor(session, w.cataloguer),
            None,
            catalog.RecordForm(title=f"Title {t}"),
            at=NOW,
        )
        catalog.add_items(
            session,
            None,
            [catalog.NewItem(record.id, c, p.id) for c, p in zip(codes, places, strict=True)],
            at=NOW,
        )
        barcodes += codes
    readers_ = [factories.reader(session, w.central, 500 + n).id for n in range(n_readers)]
    session.commit()
    return w, readers_, barcodes[:n_items]


def test_64_clients_racing_for_100_copies_never_lend_one_twice(
    session: Session, engine: Engine
) -> None:
    w, reader_ids, barcodes = setup(session, 100, 64)
    units = [w.central.id, w.airport.id, w.community.id]
    records = sorted(set(session.scalars(select(catalog.Item.record_id)).all()))
    session.rollback()  # on SQLite an open write transaction here would stop every client
    factory = make_session_factory(engine)
    barrier = threading.Barrier(len(reader_ids))
    acknowledged: list[tuple[str, int]] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def client(n: int, reader_id: int) -> None:
        rng = random.Random(n)
        barrier.wait()
        for step in range(12):
            s = factory()
            at = NOW + dt.timedelta(minutes=step)
            try:
                roll = rng.random()
                if roll < 0.45:
                    loan = circulation.checkout(
                        s,
                        None,
                        reader_id=reader_id,
                        barcode=rng.choice(barcodes),
                        at_unit_id=rng.choice(units),
                        at=at,
                    )
                    s.commit()
                    with lock:
                        acknowledged.append(("loan", loan.id))
                elif roll < 0.8:
                    done = circulation.checkin(
                        s, None, barcode=rng.choice(barcodes), at_unit_id=rng.choice(units), at=at
                    )
                    s.commit()
                    if done.loan is not None:
                        with lock:
                            acknowledged.append(("return", done.loan.id))
                elif roll < 0.95:
                    hold = holds.place(
                        s,
                        None,
                        reader_id=reader_id,
                        record_id=rng.choice(records),
                        pickup_unit_id=rng.choice(units),
                        at=at,
                    )
                    s.commit()
                    with lock:
                        acknowledged.append(("hold", hold.id))
                else:
                    mine = s.scalars(
                        select(Hold.id).where(Hold.reader_id == reader_id, Hold.status.in_(ACTIVE))
                    ).all()
                    if mine:
                        holds.cancel(s, None, rng.choice(mine), at=at)
                        s.commit()
            except DomainError:
                s.rollback()
            except BaseException as exc:
                s.rollback()
                failures.append(exc)
            finally:
                s.close()

    threads = [threading.Thread(target=client, args=(n, rid)) for n, rid in enumerate(reader_ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [], failures[:3]
    kinds = Counter(kind for kind, _id in acknowledged)
    assert kinds["loan"] > 50 and kinds["return"] > 20 and kinds["hold"] > 10, kinds
    session.expire_all()
    # Every acknowledged change is there.
    loan_ids = {i for k, i in acknowledged if k == "loan"}
    assert session.scalar(select(func.count()).where(Loan.id.in_(loan_ids))) == len(loan_ids)
    returned = {i for k, i in acknowledged if k == "return"}
    assert session.scalar(
        select(func.count()).where(Loan.id.in_(returned), Loan.returned_at.is_not(None))
    ) == len(returned)
    hold_ids = {i for k, i in acknowledged if k == "hold"}
    assert session.scalar(select(func.count()).where(Hold.id.in_(hold_ids))) == len(hold_ids)
    check_invariants(session)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["lend", "return", "hold", "cancel", "ship", "expire", "suspend"]),
        st.integers(0, 7),  # which copy (or title: copy // 4)
        st.integers(0, 3),  # which reader
        st.integers(0, 2),  # which library
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_random_sequences_keep_the_invariants(
    session: Session, engine: Engine, ops: list[tuple[str, int, int, int]]
) -> None:
    from tests.conftest import _wipe

    session.rollback()
    _wipe(engine)
    w, reader_ids, barcodes = setup(session, 8, 4)
    units = [w.central.id, w.airport.id, w.community.id]
    records = sorted(set(session.scalars(select(catalog.Item.record_id)).all()))
    staff = w.actor(session, w.admin)
    at = NOW
    for op, which, who, where in ops:
        at += dt.timedelta(hours=7)
        try:
            with session.begin_nested():
                if op == "lend":
                    circulation.checkout(
                        session,
                        None,
                        reader_id=reader_ids[who],
                        barcode=barcodes[which],
                        at_unit_id=units[where],
                        at=at,
                    )
                elif op == "return":
                    circulation.checkin(
                        session, None, barcode=barcodes[which], at_unit_id=units[where], at=at
                    )
                elif op == "hold":
                    holds.place(
                        session,
                        None,
                        reader_id=reader_ids[who],
                        record_id=records[which // 4],
                        pickup_unit_id=units[where],
                        at=at,
                    )
                elif op in ("cancel", "suspend"):
                    mine = session.scalars(
                        select(Hold.id).where(
                            Hold.reader_id == reader_ids[who], Hold.status.in_(ACTIVE)
                        )
                    ).all()
                    if mine:
                        if op == "cancel":
                            holds.cancel(session, None, mine[0], at=at)
                        else:
                            holds.suspend(session, None, mine[0], until=None, at=at)
                elif op == "ship":
                    sending = holds.transits_at(session, [units[where]], incoming=False)
                    if sending:
                        holds.ship(session, staff, sending[0].transit.id, at=at)
                else:
                    holds.expire_and_resume(session, at + dt.timedelta(days=10))
        except DomainError:
            pass
        session.flush()
        check_invariants(session)
    session.commit()
