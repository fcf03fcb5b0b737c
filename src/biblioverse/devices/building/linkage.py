"""Linkage: what the building does when an alarm is raised or resolved.

The `alarm.raised` and `alarm.resolved` events leave the transaction that changed the alarm
through the outbox; this subscriber hands each to a small pool of worker threads (a slow
webhook must not hold up the relay), which runs the matching rules' actions:

- `notify`: the staff console shows the alarm until someone acknowledges it;
- `mqtt`: publishes `{"command": ..., "args": ..., "alarm": {...}}` to
  `biblioverse/v1/devices/{device_id}/commands` (QoS 1), for a dehumidifier, a door, a
  screen;
- `webhook`: POSTs the alarm as JSON, signed with HMAC-SHA256 of the body when the rule has
  a secret (`X-Biblioverse-Signature: sha256=...`).

Each action is written down before it is tried (unique per alarm, rule, action and
trigger), so a repeated event acts once; how it went (done, failed and why) is kept with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biblioverse import libraries
from biblioverse.devices.building.rules import AlarmFacts, RuleFacts, rule_matches
from biblioverse.devices.models import Alarm, AlarmAction, LinkageRule

log = logging.getLogger(__name__)

COMMAND_TOPIC = "biblioverse/v1/devices/{device_id}/commands"
TOPICS = {"alarm.raised": "raised", "alarm.resolved": "resolved"}


def alarm_json(alarm: Alarm, location: libraries.Location | None, trigger: str) -> dict[str, Any]:
    return {
        "event": f"alarm.{trigger}",
        "id": alarm.id,
        "kind": alarm.kind,
        "state": alarm.state,
        "library_id": alarm.org_unit_id,
        "zone": location.code if location else None,
        "device_id": alarm.device_id,
        "item_id": alarm.item_id,
        "metric": alarm.metric,
        "channel": alarm.channel or None,
        "value": alarm.value,
        "last_value": alarm.last_value,
        "low": alarm.low,
        "high": alarm.high,
        "raised_at": alarm.raised_at.isoformat(),
        "resolved_at": alarm.resolved_at.isoformat() if alarm.resolved_at else None,
        "note": alarm.note,
    }


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Linkage:
    """Runs linkage rules for alarm events. `publish(topic, payload)` sends an MQTT message
    (None when the app has no broker: such actions fail with that reason)."""

    def __init__(
        self,
        factory: Callable[[], Session],
        *,
        publish: Callable[[str, bytes], None] | None = None,
        timeout: float = 5.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        workers: int = 2,
    ) -> None:
        self._factory, self._publish, self._timeout, self._clock = factory, publish, timeout, clock
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None  # started by the first event
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    # the outbox subscriber: returns at once
    def __call__(self, topic: str, payload: dict[str, Any]) -> None:
        trigger = TOPICS.get(topic)
        alarm_id = payload.get("alarm_id")
        if trigger is None or not isinstance(alarm_id, int):
            return
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="linkage")
            future = self._pool.submit(self._guarded, alarm_id, trigger)
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _guarded(self, alarm_id: int, trigger: str) -> None:
        try:
            self.run(alarm_id, trigger)
        except Exception:
            log.exception("linkage for alarm %s failed", alarm_id)

    def wait(self, timeout: float = 10.0) -> None:
        """Until the actions under way are done (tests, shutdown)."""
        with self._lock:
            pending = list(self._pending)
        for f in pending:
            f.result(timeout)

    def close(self) -> None:
        """Finishes what is under way; a later event starts the workers again."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)

    def run(self, alarm_id: int, trigger: str) -> list[tuple[str, str, str]]:
        """Runs the actions of every matching rule once; (type, status, detail) of each."""
        done: list[tuple[str, str, str]] = []
        work: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
        with self._factory() as session:
            alarm = session.get(Alarm, alarm_id)
            if alarm is None:
                return done
            unit_path = libraries.get_unit(session, alarm.org_unit_id).path
            facts = AlarmFacts(alarm.kind, alarm.metric, alarm.location_id, unit_path)
            location = (
                session.get(libraries.Location, alarm.location_id) if alarm.location_id else None
            )
            body = alarm_json(alarm, location, trigger)
            for rule, rule_path in session.execute(
                select(LinkageRule, libraries.OrgUnit.path)
                .join(libraries.OrgUnit, libraries.OrgUnit.id == LinkageRule.org_unit_id)
                .where(LinkageRule.trigger == trigger, LinkageRule.enabled.is_(True))
            ):
                rule_facts = RuleFacts(
                    rule.kind, rule.metric, rule.location_id, rule_path, rule.trigger, rule.enabled
                )
                if not rule_matches(rule_facts, facts, trigger):
                    continue
                for position, action in enumerate(rule.actions):
                    row = AlarmAction(
                        alarm_id=alarm_id,
                        rule_id=rule.id,
                        position=position,
                        trigger=trigger,
                        type=str(action.get("type")),
                        status="pending",
                        detail="",
                        at=self._clock(),
                    )
                    try:
                        with session.begin_nested():
                            session.add(row)
                            session.flush()
                    except IntegrityError:
                        continue  # this action was taken for this event already
                    work.append((row.id, dict(action), {**body, "rule": rule.name}))
            session.commit()
        for row_id, action, payload in work:
            status, detail = self._act(action, payload)
            with self._factory() as session:
                taken = session.get(AlarmAction, row_id)
                if taken is not None:
                    taken.status, taken.detail, taken.at = status, detail[:300], self._clock()
                    session.commit()
            done.append((str(action.get("type")), status, detail))
        return done

    def _act(self, action: dict[str, Any], alarm: dict[str, Any]) -> tuple[str, str]:
        kind = action.get("type")
        if kind == "notify":
            return "done", "shown on the staff console"
        if kind == "mqtt":
            if self._publish is None:
                return "failed", "no MQTT broker configured (BIBLIOVERSE_MQTT_URL)"
            topic = COMMAND_TOPIC.format(device_id=action["device_id"])
            message = orjson.dumps(
                {"command": action["command"], "args": action.get("args", {}), "alarm": alarm}
            )
            try:
                self._publish(topic, message)
            except Exception as exc:  # the broker is down: say so, do not crash the worker
                return "failed", f"MQTT: {exc}"
            return "done", f"published to {topic}"
        if kind == "webhook":
            import httpx  # with the first webhook: it brings 5 MB of every web worker's memory

            body = orjson.dumps(alarm)
            headers = {"Content-Type": "application/json", "X-Biblioverse-Event": alarm["event"]}
            if action.get("secret"):
                headers["X-Biblioverse-Signature"] = sign(str(action["secret"]), body)
            last = ""
            for _attempt in range(2):
                try:
                    answer = httpx.post(
                        str(action["url"]), content=body, headers=headers, timeout=self._timeout
                    )
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    continue
                if answer.is_success:
                    return "done", f"HTTP {answer.status_code}"
                last = f"HTTP {answer.status_code}"
                if answer.status_code < 500:
                    break  # the receiver refused it; asking again changes nothing
            return "failed", last
        return "failed", f"unknown action {kind!r}"


def mqtt_publisher(url: str) -> Callable[[str, bytes], None]:
    """Publishes one message and waits for the broker's acknowledgement (QoS 1)."""
    from paho.mqtt import publish

    from biblioverse.devices.rfid.ingest import mqtt_settings

    settings = mqtt_settings(url)

    def send(topic: str, payload: bytes) -> None:
        auth = None
        if "username" in settings:
            auth = {"username": str(settings["username"]), "password": settings.get("password")}
        tls = {"insecure": False} if "tls_context" in settings else None
        publish.single(
            topic,
            payload,
            qos=1,
            hostname=str(settings["hostname"]),
            port=int(settings["port"]),  # type: ignore[call-overload]
            auth=auth,  # type: ignore[arg-type]
            tls=tls,  # type: ignore[arg-type]
            client_id="",
        )

    return send


class OfflineWatch:
    """Every `every` seconds, raises an alarm for each device silent longer than `after`
    (and resolves those heard from again). One thread per app process; two processes
    raising the same alarm is prevented by the alarm's open key."""

    def __init__(
        self,
        factory: Callable[[], Session],
        *,
        after: dt.timedelta,
        every: float = 30.0,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._factory, self._after, self._every = factory, after, every
        self._on_change, self._clock = on_change, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="offline-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def check(self) -> tuple[list[int], list[int]]:
        from biblioverse.devices.building.service import check_offline

        with self._factory() as session:
            judged = check_offline(session, at=self._clock(), after=self._after)
            session.commit()
        if (judged.raised or judged.resolved) and self._on_change is not None:
            self._on_change()
        return judged.raised, judged.resolved

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.check()
            except Exception:
                log.exception("the offline check failed; trying again in %.0f s", self._every)
