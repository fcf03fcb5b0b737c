"""What the building does when other contexts' events say so, after their commit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from biblioverse.accounts import DeviceKey
from biblioverse.building.service import raise_gate_alarm


class GateAlarms:
    """A gate alarmed (`gate.alarm`, urgent, so before the gate has its answer): an alarm the
    desk sees, acknowledges and resolves like any other. Delivered again, it changes nothing
    while the same alarm is open. ``after``: called when an alarm was raised (the app nudges
    its relay, which tells the linkage rules)."""

    def __init__(
        self, factory: Callable[[], Session], after: Callable[[], None] | None = None
    ) -> None:
        self._factory, self._after = factory, after

    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        device_id, item_id, tag = (
            payload.get("device_id"),
            payload.get("item_id"),
            payload.get("tag"),
        )
        if (
            not isinstance(device_id, int)
            or not isinstance(item_id, int)
            or not isinstance(tag, str)
        ):
            return
        at = dt.datetime.fromisoformat(str(payload.get("at")))
        with self._factory() as session:
            device = session.get(DeviceKey, device_id)
            if device is None:
                return
            raised = raise_gate_alarm(session, device=device, item_id=item_id, tag=tag, at=at)
            session.commit()
        if raised is not None and self._after is not None:
            self._after()
