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
A failure that may pass (the broker down, a receiver answering 5xx or not at all) is tried
again after 1, 5, 15 and 60 minutes (`Linkage.retry_due`, every 30 s in each app process;
a process claims an action before trying it, so two never send it twice); one still pending
after its process ended is tried again too. A refusal that will not change (a 4xx answer, an
unknown action) is not, nor the raising actions of an alarm resolved in the meantime.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biblioverse import libraries
from biblioverse.building.models import Alarm, AlarmAction, LinkageRule
from biblioverse.building.rules import AlarmFacts, AlarmState, RuleFacts, rule_matches
from biblioverse.building.service import check_offline

log = logging.getLogger(__name__)

COMMAND_TOPIC = "biblioverse/v1/devices/{device_id}/commands"
TOPICS = {"alarm.raised": "raised", "alarm.resolved": "resolved"}
# A failed action that may succeed later (a broker or a receiver down) is tried again after
# these waits, then given up: 5 attempts over about 80 minutes.
RETRY_AFTER = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=15),
    dt.timedelta(hours=1),
)
# An action is written down as pending before it is tried; one still pending this long after
# (its process ended mid-way) is tried again. Far above the longest attempt (two webhook
# calls of `timeout` seconds).
LEASE = dt.timedelta(minutes=2)


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
        self._sweeper: threading.Thread | None = None
        self._stop = threading.Event()

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
        """Finishes what is under way and stops the retries; a later event starts the
        workers again."""
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join(10)
            self._sweeper = None
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)

    def start_retries(self, every: float) -> None:
        """Look for actions to try again every ``every`` seconds, in a thread of its own."""
        if self._sweeper is not None:
            return
        self._stop.clear()
        self._sweeper = threading.Thread(
            target=self._sweep, args=(every,), name="linkage-retries", daemon=True
        )
        self._sweeper.start()

    def _sweep(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.retry_due()
            except Exception:
                log.exception("linkage retries failed; looking again in %.0f s", every)

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
                    now = self._clock()
                    row = AlarmAction(
                        alarm_id=alarm_id,
                        rule_id=rule.id,
                        position=position,
                        trigger=trigger,
                        type=str(action.get("type")),
                        status="pending",
                        detail="",
                        at=now,
                        attempts=1,
                        next_at=now + LEASE,
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
            status, detail = self._try(row_id, action, payload)
            done.append((str(action.get("type")), status, detail))
        return done

    def _try(self, row_id: int, action: dict[str, Any], payload: dict[str, Any]) -> tuple[str, str]:
        """Take one claimed action and write down how it went, and when to try it again."""
        status, detail, may_pass = self._act(action, payload)
        with self._factory() as session:
            taken = session.get(AlarmAction, row_id)
            if taken is not None:
                now = self._clock()
                taken.status, taken.detail, taken.at = status, detail[:300], now
                taken.next_at = None
                if status == "failed" and may_pass:
                    if taken.attempts <= len(RETRY_AFTER):
                        taken.next_at = now + RETRY_AFTER[taken.attempts - 1]
                    else:
                        taken.detail = f"gave up after {taken.attempts} attempts: {detail}"[:300]
                session.commit()
        return status, detail

    def retry_due(self, limit: int = 50) -> list[tuple[int, str, str]]:
        """Try again the actions whose time has come; (action id, status, detail) of each.

        Each is claimed first (its next attempt moved on by `LEASE`, if no one else moved it),
        so two processes sweeping at once do not both send it."""
        now = self._clock()
        out: list[tuple[int, str, str]] = []
        with self._factory() as session:
            due = session.execute(
                select(AlarmAction.id, AlarmAction.next_at)
                .where(AlarmAction.next_at <= now)
                .order_by(AlarmAction.next_at)
                .limit(limit)
            ).all()
        for row_id, seen in due:
            assert seen is not None  # selected for it
            claimed = self._claim(row_id, seen, now)
            if claimed is None:
                continue
            action, payload, stale = claimed
            if stale:
                out.append((row_id, "failed", stale))
                continue
            status, detail = self._try(row_id, action, payload)
            out.append((row_id, status, detail))
        return out

    def _claim(
        self, row_id: int, seen: dt.datetime, now: dt.datetime
    ) -> tuple[dict[str, Any], dict[str, Any], str] | None:
        """The action and its message, or a reason it is no longer worth sending (then it is
        given up here); None when another process claimed it first."""
        with self._factory() as session:
            won = session.execute(
                update(AlarmAction)
                .where(AlarmAction.id == row_id, AlarmAction.next_at == seen)
                .values(next_at=now + LEASE, attempts=AlarmAction.attempts + 1)
            )
            if won.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                return None
            taken = session.get(AlarmAction, row_id)
            assert taken is not None
            alarm = session.get(Alarm, taken.alarm_id)
            rule = session.get(LinkageRule, taken.rule_id)
            stale = ""
            if alarm is None or rule is None or not rule.enabled:
                stale = "the rule was removed or disabled"
            elif taken.position >= len(rule.actions):
                stale = "the rule's actions changed"
            elif taken.trigger == "raised" and alarm.state not in (
                AlarmState.RAISED,
                AlarmState.ACKNOWLEDGED,
            ):
                stale = "the alarm was resolved first"
            if stale or alarm is None or rule is None:
                taken.status, taken.next_at, taken.at = "failed", None, now
                taken.detail = f"not sent: {stale}"
                session.commit()
                return {}, {}, taken.detail
            location = (
                session.get(libraries.Location, alarm.location_id) if alarm.location_id else None
            )
            payload = {**alarm_json(alarm, location, taken.trigger), "rule": rule.name}
            action = dict(rule.actions[taken.position])
            session.commit()
        return action, payload, ""

    def _act(self, action: dict[str, Any], alarm: dict[str, Any]) -> tuple[str, str, bool]:
        """(status, detail, whether a failure may pass if tried again later)."""
        kind = action.get("type")
        if kind == "notify":
            return "done", "shown on the staff console", False
        if kind == "mqtt":
            if self._publish is None:
                return "failed", "no MQTT broker configured (BIBLIOVERSE_MQTT_URL)", True
            topic = COMMAND_TOPIC.format(device_id=action["device_id"])
            message = orjson.dumps(
                {"command": action["command"], "args": action.get("args", {}), "alarm": alarm}
            )
            try:
                self._publish(topic, message)
            except Exception as exc:  # the broker is down: say so, do not crash the worker
                return "failed", f"MQTT: {exc}", True
            return "done", f"published to {topic}", False
        if kind == "webhook":
            import httpx  # with the first webhook: not in every web worker's memory

            body = orjson.dumps(alarm)
            headers = {"Content-Type": "application/json", "X-Biblioverse-Event": alarm["event"]}
            if action.get("secret"):
                headers["X-Biblioverse-Signature"] = sign(str(action["secret"]), body)
            last, may_pass = "", True
            for _attempt in range(2):
                try:
                    answer = httpx.post(
                        str(action["url"]), content=body, headers=headers, timeout=self._timeout
                    )
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                    continue
                if answer.is_success:
                    return "done", f"HTTP {answer.status_code}", False
                last = f"HTTP {answer.status_code}"
                if answer.status_code < 500:
                    may_pass = False  # the receiver refused it; asking again changes nothing
                    break
            return "failed", last, may_pass
        return "failed", f"unknown action {kind!r}", False


def mqtt_publisher(url: str, timeout: float = 5.0) -> Callable[[str, bytes], None]:
    """Publishes one message and waits for the broker's acknowledgement (QoS 1), at most
    ``timeout`` seconds for the connection and as long again for the acknowledgement: a
    broker that is down, or that takes the connection and never answers, fails the action
    (to be tried again) instead of holding a worker."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from biblioverse.devices.mqtt import mqtt_settings

    settings = mqtt_settings(url)

    def send(topic: str, payload: bytes) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="")
        client.connect_timeout = timeout
        if "username" in settings:
            password = settings.get("password")
            client.username_pw_set(str(settings["username"]), str(password) if password else None)
        if isinstance(tls := settings.get("tls_context"), ssl.SSLContext):
            client.tls_set_context(tls)
        client.connect(str(settings["hostname"]), int(str(settings["port"])))
        client.loop_start()
        try:
            sent = client.publish(topic, payload, qos=1)
            sent.wait_for_publish(timeout)
            if not sent.is_published():
                raise TimeoutError(f"the broker did not acknowledge within {timeout:g} s")
        finally:
            client.disconnect()
            client.loop_stop()

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
