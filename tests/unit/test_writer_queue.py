"""SQLite's writers of one process take turns in the order they asked (db.WriterQueue)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from biblioverse.db import WriterQueue, make_engine


def _start(fn: object) -> threading.Thread:
    t = threading.Thread(target=fn)  # type: ignore[arg-type]
    t.start()
    return t


def test_writers_are_let_in_in_the_order_they_asked() -> None:
    q = WriterQueue(timeout=10)
    assert q.enter()
    order: list[int] = []

    def writer(n: int) -> None:
        assert q.enter()
        order.append(n)
        q.leave()

    threads = []
    for n in range(6):
        threads.append(_start(lambda n=n: writer(n)))
        time.sleep(0.05)  # each asks after the one before
    assert order == []  # all wait for the first
    q.leave()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4, 5]


def test_a_writer_that_waited_too_long_goes_on_and_leaves_the_queue_working() -> None:
    q = WriterQueue(timeout=0.2)
    assert q.enter()
    assert q.enter() is False  # the holder asks again: it waits till the timeout, not for ever
    got: list[bool] = []
    t = _start(lambda: got.append(q.enter()))
    q.leave()
    t.join(5)
    assert got == [True]  # the one that gave up is not in the way of the next
    q.leave()
    assert q.enter()


def test_sqlite_writers_of_one_process_take_turns(tmp_path: Path) -> None:
    """A write transaction holds the others back until its connection is given back; they
    then go in the order they came, and none is refused."""
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE log (n INTEGER)"))
    order: list[int] = []
    first = engine.connect()
    first.execute(text("INSERT INTO log VALUES (-1)"))  # BEGIN IMMEDIATE: the writer

    def writer(n: int) -> None:
        with engine.begin() as conn:
            order.append(n)
            conn.execute(text("INSERT INTO log VALUES (:n)"), {"n": n})

    threads = []
    for n in range(4):
        threads.append(_start(lambda n=n: writer(n)))
        time.sleep(0.2)
    assert order == []
    first.commit()
    first.close()
    for t in threads:
        t.join(20)
    assert order == [0, 1, 2, 3]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM log")).scalar_one() == 5
    engine.dispose()
