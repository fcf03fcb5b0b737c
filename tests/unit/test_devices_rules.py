"""What the devices page says of a device: retired, never seen, online within the offline
time (its edge included), silent after it."""

from __future__ import annotations

import datetime as dt

from biblioverse.devices.rules import Status, newest, status

NOW = dt.datetime(2026, 11, 18, 6, 0, tzinfo=dt.UTC)


def test_status_of_a_device() -> None:
    after = dt.timedelta(minutes=5)
    assert status(retired=True, last_seen=NOW, now=NOW, silent_after=after) is Status.RETIRED
    assert status(retired=False, last_seen=None, now=NOW, silent_after=after) is Status.NEVER
    edge = NOW - after
    assert status(retired=False, last_seen=edge, now=NOW, silent_after=after) is Status.ONLINE
    late = edge - dt.timedelta(seconds=1)
    assert status(retired=False, last_seen=late, now=NOW, silent_after=after) is Status.SILENT


def test_newest_of_the_times_known() -> None:
    assert newest(None, None) is None
    assert newest(NOW, None, NOW - dt.timedelta(1)) == NOW
