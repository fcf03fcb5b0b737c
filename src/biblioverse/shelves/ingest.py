"""Ingestion of smart-shelf traffic: messages in, batches of reports applied.

Topics (MQTT) — a device publishes under its own registry id:

    biblioverse/v1/devices/{device_id}/tags        snapshot and delta reports (JSON)
    biblioverse/v1/devices/{device_id}/readings    a sensor's values (JSON)
    biblioverse/v1/devices/{device_id}/heartbeat   {"seq": n, "ts": ...}

The same JSON is accepted over HTTP (`POST /api/v1/devices/me/tags`, `.../readings`).
Messages are read as they come (on the event loop: orjson is fast), and applied in batches,
a batch every few hundred milliseconds, in one transaction on a worker thread: at tens of
thousands of reads a second a transaction per message would be the bottleneck. A sensor's
reading does not wait for the next tick: it wakes the batcher at once, so that an alarm is
visible within milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from biblioverse.building.rules import ReadingReport, parse_readings
from biblioverse.building.service import apply_readings
from biblioverse.devices.mqtt import TOPIC_ROOT, mqtt_settings
from biblioverse.devices.rules import ErrorKind, PayloadError
from biblioverse.devices.service import Health
from biblioverse.shelves.rules import Report, parse_report
from biblioverse.shelves.service import AntennaMap, Applied, TagResolver, apply_reports

log = logging.getLogger(__name__)

TOPIC_KINDS = {"tags": None, "heartbeat": "heartbeat", "readings": "readings"}
ANTENNA_MAP_SECONDS = 10.0  # a new shelf or antenna is picked up this quickly
MAX_BUCKETS = 100_000  # flood buckets kept, one per device id seen


@dataclass
class FloodLimit:
    """Per device: a steady rate and a burst of messages; beyond, messages are dropped and
    counted, so that one misbehaving reader cannot starve the others."""

    per_second: float = 200.0
    burst: float = 2000.0


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class IngestStats:
    received: int = 0
    applied_reports: int = 0
    applied_reads: int = 0
    rejected: int = 0
    dropped: int = 0  # flood
    stray: int = 0  # a topic that names no device
    batches: int = 0
    moved: int = 0
    readings: int = 0
    alarms_raised: int = 0
    alarms_resolved: int = 0


@dataclass
class Ingestor:
    factory: Callable[[], Session]
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    flood: FloodLimit = field(default_factory=FloodLimit)
    stats: IngestStats = field(default_factory=IngestStats)
    # after a batch that raised or resolved alarms committed (the app nudges its relay)
    after_alarms: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._reports: list[Report] = []
        self._readings: list[ReadingReport] = []
        self._health: dict[int, Health] = {}
        self._buckets: dict[int, _Bucket] = {}
        self._resolver = TagResolver()
        self._antennas: AntennaMap | None = None
        self._flushing = threading.Lock()

    # --- receiving (any thread; the MQTT loop) ---------------------------------------

    def _allowed(self, device_id: int) -> bool:
        now = time.monotonic()
        b = self._buckets.get(device_id)
        if b is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets.clear()  # ids invented by a stranger must not grow this forever
            b = self._buckets[device_id] = _Bucket(self.flood.burst, now)
        b.tokens = min(self.flood.burst, b.tokens + (now - b.at) * self.flood.per_second)
        b.at = now
        if b.tokens < 1:
            return False
        b.tokens -= 1
        return True

    def accept(self, device_id: int, payload: bytes, *, kind: str | None = None) -> bool:
        """Takes one message; False when it was refused (and counted against the device)."""
        received = self.clock()
        with self._lock:
            self.stats.received += 1
            if not self._allowed(device_id):
                self.stats.dropped += 1
                self._health.setdefault(device_id, Health()).error(
                    ErrorKind.FLOOD, "more messages than the device may send; dropped", received
                )
                return False
        try:
            if kind == "readings":
                reading = parse_readings(payload, device_id=device_id, received=received)
            else:
                report = parse_report(payload, device_id=device_id, received=received, kind=kind)
        except PayloadError as exc:
            with self._lock:
                self.stats.rejected += 1
                self._health.setdefault(device_id, Health()).error(exc.kind, str(exc), received)
            return False
        with self._lock:
            if kind == "readings":
                self._readings.append(reading)
            else:
                self._reports.append(report)
        return True

    def accept_topic(self, topic: str, payload: bytes) -> bool:
        parts = topic.split("/")
        root = TOPIC_ROOT.split("/")
        if len(parts) != len(root) + 2 or parts[: len(root)] != root:
            self.stats.stray += 1
            return False
        device, what = parts[-2], parts[-1]
        if not device.isdigit() or what not in TOPIC_KINDS:
            self.stats.stray += 1
            return False
        return self.accept(int(device), payload, kind=TOPIC_KINDS[what])

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._reports) + len(self._readings)

    # --- applying (a worker thread) -----------------------------------------------------

    def flush(self) -> Applied | None:
        """Applies what came in since the last flush, in one transaction. A failed batch is
        logged and dropped: the readers' next snapshots restore the truth."""
        with self._flushing:
            with self._lock:
                reports, self._reports = self._reports, []
                readings, self._readings = self._readings, []
                health, self._health = self._health, {}
            if not reports and not readings and not health:
                return None
            try:
                with self.factory() as session:
                    if self._antennas is None or (
                        time.monotonic() - self._antennas.loaded_at > ANTENNA_MAP_SECONDS
                    ):
                        self._antennas = AntennaMap.load(session)
                    sensed = apply_readings(
                        session,
                        readings,
                        at=self.clock(),
                        devices=self._antennas.devices,
                        health=health,
                    )
                    applied = apply_reports(
                        session,
                        reports,
                        at=self.clock(),
                        antennas=self._antennas,
                        resolver=self._resolver,
                        health=health,
                    )
                    session.commit()
            except Exception:
                log.exception(
                    "a batch of %d shelf reports and %d readings failed",
                    len(reports),
                    len(readings),
                )
                return None
            self.stats.batches += 1
            self.stats.readings += sensed.readings
            self.stats.alarms_raised += len(sensed.raised)
            self.stats.alarms_resolved += len(sensed.resolved)
            if (sensed.raised or sensed.resolved) and self.after_alarms is not None:
                self.after_alarms()
            self.stats.applied_reports += applied.reports
            self.stats.applied_reads += applied.reads
            self.stats.rejected += applied.rejected
            self.stats.moved += applied.moved
            return applied

    def refresh_devices(self) -> None:
        """Forget the antenna map (a shelf or device was just registered)."""
        self._antennas = None


# --- MQTT ---------------------------------------------------------------------------


async def run_mqtt(
    ingestor: Ingestor,
    url: str,
    *,
    stop: asyncio.Event,
    interval: float = 0.25,
    ready: asyncio.Event | None = None,
    client_id: str = "biblioverse-ingest",
    group: str = "biblioverse",
) -> None:
    """Subscribes to every device's topics and applies what arrives until `stop` is set;
    reconnects when the broker goes away. With several app processes the subscription is
    shared (`$share/...`): each message goes to one of them."""
    import aiomqtt

    settings = mqtt_settings(url)

    wake = asyncio.Event()  # a sensor reading: apply it now, not at the next tick

    async def flusher() -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), interval)
            wake.clear()
            await asyncio.to_thread(ingestor.flush)

    async def wake_on_stop() -> None:
        await stop.wait()
        wake.set()

    stopping = asyncio.create_task(wake_on_stop())

    flushing = asyncio.create_task(flusher())
    try:
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    identifier=client_id,
                    clean_session=True,
                    **settings,  # type: ignore[arg-type]
                ) as client:
                    await client.subscribe(f"$share/{group}/{TOPIC_ROOT}/+/tags", qos=1)
                    await client.subscribe(f"$share/{group}/{TOPIC_ROOT}/+/readings", qos=1)
                    await client.subscribe(f"$share/{group}/{TOPIC_ROOT}/+/heartbeat", qos=0)
                    if ready is not None:
                        ready.set()
                    messages = client.messages.__aiter__()
                    while not stop.is_set():
                        getter = asyncio.ensure_future(messages.__anext__())
                        stopper = asyncio.ensure_future(stop.wait())
                        done, _ = await asyncio.wait(
                            {getter, stopper}, return_when=asyncio.FIRST_COMPLETED
                        )
                        if getter not in done:
                            getter.cancel()
                            break
                        stopper.cancel()
                        message = getter.result()
                        payload = message.payload
                        if isinstance(payload, str):
                            payload = payload.encode()
                        if isinstance(payload, bytes | bytearray):
                            topic = str(message.topic)
                            if ingestor.accept_topic(topic, bytes(payload)) and topic.endswith(
                                "/readings"
                            ):
                                wake.set()
            except aiomqtt.MqttError as exc:
                if stop.is_set():
                    break
                log.warning("MQTT broker unreachable (%s); retrying in 2 s", exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
    finally:
        stop.set()
        await stopping
        await flushing
        await asyncio.to_thread(ingestor.flush)


class MqttIngestion:
    """`run_mqtt` in a thread with its own event loop: for the app's lifespan and the CLI,
    which have no loop to lend (uvicorn's belongs to the requests)."""

    def __init__(self, ingestor: Ingestor, url: str, **options: object) -> None:
        self.ingestor, self._url, self._options = ingestor, url, options
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mqtt", daemon=True)
        self._stop: asyncio.Event | None = None
        self._task: object = None

    def start(self, *, wait: float = 10.0) -> bool:
        """Connect and subscribe; True once subscribed (False: the broker is not there yet,
        and the loop keeps trying)."""
        mqtt_settings(self._url)  # a bad URL fails here, loudly, not in the thread
        self._thread.start()

        async def begin() -> tuple[asyncio.Event, asyncio.Event]:
            stop, ready = asyncio.Event(), asyncio.Event()
            self._task = asyncio.ensure_future(
                run_mqtt(self.ingestor, self._url, stop=stop, ready=ready, **self._options)  # type: ignore[arg-type]
            )
            return stop, ready

        self._stop, ready = asyncio.run_coroutine_threadsafe(begin(), self._loop).result(5)
        try:
            asyncio.run_coroutine_threadsafe(
                asyncio.wait_for(ready.wait(), wait), self._loop
            ).result(wait + 1)
            return True
        except TimeoutError:
            return False

    def stop(self) -> None:
        if self._stop is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)

        async def finish() -> None:
            if isinstance(self._task, asyncio.Future):
                await self._task

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(finish(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
