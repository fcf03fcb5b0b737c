"""Smart shelves through the real MQTT broker: copies placed, moved, taken and put back;
repeated, late and malformed messages; floods; where a book is."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from biblioverse import catalog, shelves
from biblioverse.devices.models import DeviceHealth
from biblioverse.shelves import reports
from biblioverse.shelves.ingest import FloodLimit
from biblioverse.shelves.models import ItemPosition, ShelfUse, UnknownTag
from tests.factories import NOW, lend, rule, world
from tests.integration.rfid_support import ingesting, message, room

pytestmark = pytest.mark.db

T0 = NOW - dt.timedelta(minutes=30)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def positions(session: Session) -> dict[int, tuple[int, int, str]]:
    """Read and let go at once: on SQLite a transaction left open would hold the write lock
    that the ingestor needs."""
    session.rollback()
    out = {p.item_id: (p.shelf_id, p.level, p.state) for p in session.scalars(select(ItemPosition))}
    session.rollback()
    return out


def health(session: Session, device_id: int) -> DeviceHealth:
    session.rollback()
    row = session.get(DeviceHealth, device_id)
    assert row is not None
    session.expunge(row)
    session.rollback()
    return row


def test_copies_move_between_shelves_as_the_reader_sees_them(
    session: Session, engine: Engine
) -> None:
    w = world(session)
    r = room(session, w)
    b1, b2, b3, b4 = (r.tags[b] for b in ("B1", "B2", "B3", "B4"))
    i1, i2, i3, i4 = (r.items[b] for b in ("B1", "B2", "B3", "B4"))
    session.rollback()
    with ingesting(engine) as run:
        run.publish(r.device_id, message("snapshot", 1, at(0), 1, tags=[b1, b2, b3]))
        run.publish(r.device_id, message("snapshot", 2, at(0), 3, tags=[b4]))
        run.settle(2)
        assert positions(session) == {
            i1: (r.shelf1, 1, "on_shelf"),
            i2: (r.shelf1, 1, "on_shelf"),
            i3: (r.shelf1, 1, "on_shelf"),
            i4: (r.shelf2, 1, "on_shelf"),
        }
        # a reader takes B2 off the shelf and puts it back on the other shelf, level 1
        run.publish(r.device_id, message("snapshot", 3, at(60), 1, tags=[b1, b3]))
        run.publish(r.device_id, message("delta", 4, at(90), 3, added=[b2]))
        run.settle(4)
        pos = positions(session)
        assert pos[i2] == (r.shelf2, 1, "on_shelf")
        assert pos[i1] == (r.shelf1, 1, "on_shelf")
        # B3 is taken away and not put back
        run.publish(r.device_id, message("delta", 5, at(120), 1, removed=[b3]))
        run.settle(5)
        assert positions(session)[i3] == (r.shelf1, 1, "off_shelf")
    where = shelves.where_is(session, _item(session, i2))
    assert where.source == "rfid" and where.shelf is not None and where.shelf.code == "I-2"
    assert where.level == 1 and where.seen_at == at(90)
    # B3 is off its shelf: where it belongs is all we can say
    where = shelves.where_is(session, _item(session, i3))
    assert where.source == "call_number" and where.shelf is not None
    assert where.shelf.code == "I-1" and not where.on_shelf
    h = health(session, r.device_id)
    assert h.messages == 5 and h.reads == 8 and h.errors == 0 and h.last_seq == 5


def _item(session: Session, item_id: int) -> catalog.Item:
    item = session.get(catalog.Item, item_id)
    assert item is not None
    return item


def test_repeated_and_late_messages_change_nothing(session: Session, engine: Engine) -> None:
    w = world(session)
    r = room(session, w)
    b1, b2 = r.tags["B1"], r.tags["B2"]
    i1, i2 = r.items["B1"], r.items["B2"]
    session.rollback()
    first = message("snapshot", 10, at(0), 1, tags=[b1, b2])
    moved = message("snapshot", 11, at(10), 3, tags=[b1])
    with ingesting(engine) as run:
        run.publish(r.device_id, first)
        run.publish(r.device_id, moved)
        run.settle(2)
        after = positions(session)
        assert after[i1] == (r.shelf2, 1, "on_shelf")
        # the first snapshot again, and again: it is older than what moved B1
        run.publish(r.device_id, first)
        run.publish(r.device_id, first)
        run.settle(4)
        assert positions(session) == after
        # out of order in one batch: the newer removal arrives before the older placement
        run.publish(r.device_id, message("delta", 21, at(40), 1, removed=[b2]))
        run.publish(r.device_id, message("delta", 20, at(30), 1, added=[b2]))
        run.settle(6)
        assert positions(session)[i2] == (r.shelf1, 1, "off_shelf")


def test_taken_and_put_back_without_a_loan_is_use_in_the_library(
    session: Session, engine: Engine
) -> None:
    w = world(session)
    r = room(session, w)
    central = w.central.id
    b1, b2 = r.tags["B1"], r.tags["B2"]
    i1, i2 = r.items["B1"], r.items["B2"]
    session.rollback()
    with ingesting(engine) as run:
        run.publish(r.device_id, message("snapshot", 1, at(0), 1, tags=[b1, b2]))
        run.publish(r.device_id, message("snapshot", 2, at(60), 1, tags=[b2]))
        run.settle(2)
        # B2 is lent (the reader takes it home) and B1 is put back after browsing
        rule(session, w)
        lend(session, None, w.reader_central, "B2", w.central, at=at(300))
        session.commit()
        session.rollback()
        run.publish(r.device_id, message("snapshot", 3, at(600), 1, tags=[b1]))
        run.settle(3)
        session.rollback()
        uses = [
            (u.item_id, u.shelf_id, u.taken_at, u.back_at)
            for u in session.scalars(select(ShelfUse))
        ]
        session.rollback()
        assert uses == [(i1, r.shelf1, at(60), at(600))]
        # a copy on loan put back on the shelf: a return that was never checked in
        run.publish(r.device_id, message("snapshot", 4, at(700), 1, tags=[b1, b2]))
        run.settle(4)
        session.rollback()
        assert len(list(session.scalars(select(ShelfUse)))) == 1
        session.rollback()
        assert positions(session)[i2] == (r.shelf1, 1, "on_shelf")
    # the librarian's reports say the same
    lent = reports.lent_on_shelf(session, central)
    assert [(x.barcode, x.shelf, x.level) for x in lent] == [("B2", "I-1", 1)]
    used = reports.in_library_use(session, central, since=T0)
    assert [(u.barcode, u.shelf, u.times) for u in used] == [("B1", "I-1", 1)]


def test_bad_messages_are_counted_against_their_device_and_harm_nothing(
    session: Session, engine: Engine
) -> None:
    w = world(session)
    r = room(session, w)
    b1 = r.tags["B1"]
    i1 = r.items["B1"]
    session.rollback()
    with ingesting(engine, clock=lambda: NOW) as run:
        run.publish(r.device_id, message("snapshot", 1, at(0), 1, tags=[b1]))
        run.publish(r.device_id, b"\xff\xfe not json")
        run.publish(r.device_id, b'{"type": "snapshot", "seq": 2, "ts": "yesterday"}')
        run.publish(r.device_id, b'{"type": "teleport", "seq": 3, "ts": 0}')
        run.publish(r.device_id, message("snapshot", 4, at(5), 9, tags=[b1]))  # no antenna 9
        run.publish(r.device_id, message("snapshot", 5, at(6), 1, tags=["NOT-A-TAG!"]))
        run.publish(r.device_id, message("snapshot", 6, at(7), 1, tags=[b1, "E2000000DEADBEEF"]))
        # a reader whose clock runs a day ahead: our time is used, and it is counted
        run.publish(r.device_id, message("snapshot", 7, NOW + dt.timedelta(days=1), 3, tags=[b1]))
        run.publish(999999, message("snapshot", 1, at(0), 1, tags=[b1]))  # no such device
        run.settle(9)
        pos = positions(session)
        assert pos == {i1: (r.shelf2, 1, "on_shelf")}
        h = health(session, r.device_id)
        assert h.error_counts == {
            "malformed": 4,
            "unknown_antenna": 1,
            "clock_skew": 1,
        }
        assert h.last_error is not None and h.last_error.startswith("clock_skew")
    unknown = session.get(UnknownTag, "E2000000DEADBEEF")
    assert unknown is not None and unknown.reads == 1
    assert run.ingestor.stats.rejected >= 1  # the message of a device that does not exist
    where = shelves.where_is(session, _item(session, i1))
    assert where.seen_at == NOW  # the skewed snapshot, at our time


def test_a_flooding_reader_is_cut_off_and_counted(session: Session, engine: Engine) -> None:
    w = world(session)
    r = room(session, w)
    b1 = r.tags["B1"]
    session.rollback()
    with ingesting(engine, flood=FloodLimit(per_second=1, burst=5)) as run:
        for seq in range(1, 31):
            run.publish(r.device_id, message("snapshot", seq, at(seq), 1, tags=[b1]))
        run.settle(30)
        h = health(session, r.device_id)
        assert 5 <= h.messages < 30
        assert h.error_counts["flood"] == 30 - h.messages
        assert positions(session)[r.items["B1"]] == (r.shelf1, 1, "on_shelf")
