"""The one rule of a missing copy, at its edge; a download's times in the library's zone."""

from __future__ import annotations

import datetime as dt

from biblioverse.shelves.rules import MISSING_AFTER, last_read, local_iso, missing

NOW = dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.UTC)
EDGE = NOW - MISSING_AFTER
TICK = dt.timedelta(microseconds=1)


def test_a_copy_read_at_the_cut_off_is_not_missing_one_read_just_before_is() -> None:
    assert not missing(EDGE, NOW)
    assert missing(EDGE - TICK, NOW)
    assert not missing(NOW, NOW)
    assert missing(None, NOW)  # never read


def test_last_read_of_a_copy_on_a_shelf_counts_its_antennas_snapshots() -> None:
    old, snap = EDGE - dt.timedelta(days=1), EDGE
    assert last_read("on_shelf", old, snap) == snap
    assert last_read("on_shelf", snap, old) == snap
    assert last_read("on_shelf", old, None) == old
    # taken off: the snapshot that no longer held it is no read of it
    assert last_read("off_shelf", old, snap) == old
    assert last_read(None, None, snap) is None


def test_times_in_a_download_are_local_with_their_offset() -> None:
    assert local_iso(NOW, "Asia/Shanghai") == "2026-12-07T09:30+08:00"
    assert local_iso(NOW, "UTC") == "2026-12-07T01:30+00:00"
    assert local_iso(NOW, "America/New_York") == "2026-12-06T20:30-05:00"
