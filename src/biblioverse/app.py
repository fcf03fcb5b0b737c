"""The application factory: routers, middleware, lifespan and the one error table."""

from __future__ import annotations

import datetime as dt
import fcntl
import hmac
import ipaddress
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from biblioverse import __version__, accounts, circulation, events, i18n, jetstream, libraries, sip2
from biblioverse.accounts import pages as accounts_pages
from biblioverse.accounts.api import router as accounts_router
from biblioverse.building import pages as building_pages
from biblioverse.building.api import router as building_router
from biblioverse.building.linkage import Linkage, OfflineWatch, mqtt_publisher
from biblioverse.building.subscribers import GateAlarms
from biblioverse.catalog import TantivyIndex, rebuild_index
from biblioverse.catalog import console as catalog_console
from biblioverse.catalog import pages as catalog_pages
from biblioverse.catalog import subscribers as catalog_subscribers
from biblioverse.catalog.api import add_search_route
from biblioverse.catalog.api import router as catalog_router
from biblioverse.circulation import console as circulation_console
from biblioverse.circulation import pages as circulation_pages
from biblioverse.circulation import record_pages as reader_record_pages
from biblioverse.circulation.api import router as circulation_router
from biblioverse.db import make_engine, make_session_factory, transaction, utcnow
from biblioverse.deps import Principals
from biblioverse.devices import pages as devices_pages
from biblioverse.errors import STATUS_BY_KIND, DomainError
from biblioverse.libraries import pages as libraries_pages
from biblioverse.libraries.api import router as libraries_router
from biblioverse.readers import pages as readers_pages
from biblioverse.readers.api import router as readers_router
from biblioverse.settings import Settings, load_settings
from biblioverse.shelves import pages as shelves_pages
from biblioverse.shelves.api import router as shelves_router
from biblioverse.shelves.ingest import Ingestor, MqttIngestion
from biblioverse.sip2 import pages as sip2_pages
from biblioverse.twin import Twins
from biblioverse.twin import pages as twin_pages
from biblioverse.twin.api import router as twin_router
from biblioverse.web import pages
from biblioverse.web.importmap import IMPORT_MAP_HASH
from biblioverse.web.pages import STATIC_DIR

log = logging.getLogger("biblioverse")
access_log = logging.getLogger("biblioverse.access")


class ErrorOut(BaseModel):
    """Every error the API returns has this shape."""

    error: str = Field(description="stable code for programs, e.g. duplicate, forbidden")
    message: str = Field(description="for people")
    details: Any = Field(default=None, description="the fields or records concerned")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body could not be read"},
    401: {"model": ErrorOut, "description": "Sign in first"},
    403: {"model": ErrorOut, "description": "Not allowed for this caller or this library"},
    404: {"model": ErrorOut, "description": "No such record"},
    409: {"model": ErrorOut, "description": "A duplicate or a state that forbids this"},
    413: {"model": ErrorOut, "description": "The body is larger than the limit"},
    422: {"model": ErrorOut, "description": "Invalid fields; details name each one"},
    429: {"model": ErrorOut, "description": "Too many failed sign-ins; see Retry-After"},
}
MAX_BODY_BYTES = 1_000_000


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": code, "message": message, "details": details}


def _wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api"):
        return False
    return "text/html" in request.headers.get("accept", "") or "hx-request" in request.headers


def _unique_field(exc: IntegrityError) -> str | None:
    """Which field a unique constraint guarded, from its conventional name."""
    text_ = str(exc.orig)
    for marker in ("uq_", "UNIQUE constraint failed: "):
        if marker in text_:
            tail = text_.split(marker, 1)[1].split()[0].strip('"').strip("'")
            return tail.split(".")[-1] if "." in tail else tail.split("_", 1)[-1]
    return None


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
    *,
    page_message: str | None = None,
) -> Response:
    """The one error shape for the API; an HTML page (or htmx alert) for a browser."""
    if _wants_html(request):
        return pages.error_page(request, status, page_message, headers=headers)
    return JSONResponse(error_body(code, message, details), status, headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        status = STATUS_BY_KIND.get(exc.kind, 400)
        headers = {}
        if status == 429 and isinstance(exc.details, dict):
            headers["Retry-After"] = str(exc.details.get("retry_after_s", 60))
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return error_response(
            request,
            status,
            exc.code,
            exc.message,
            exc.details,
            headers,
            page_message=exc.message,
        )

    @app.exception_handler(pages.SignInFirst)
    async def sign_in_first(request: Request, exc: pages.SignInFirst) -> Response:
        if exc.json:
            return JSONResponse(error_body("unauthenticated", "sign in as a reader first"), 401)
        return pages.signin_redirect(request)

    @app.exception_handler(pages.PageForbidden)
    async def page_forbidden(request: Request, exc: pages.PageForbidden) -> Response:
        return pages.error_page(request, 403, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ())),
                "code": err.get("type", "invalid"),
                "message": err.get("msg", "invalid"),
            }
            for err in exc.errors()
        ]
        fields = ", ".join(d["field"] for d in details)
        return error_response(
            request,
            422,
            "validation_error",
            f"invalid fields: {fields}",
            details,
        )

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError) -> Response:
        # A race past the service's own check: the database's constraint decides.
        field = _unique_field(exc)
        message = f"a record with this {field} already exists" if field else "conflicting change"
        return error_response(request, 409, "conflict", message, {"field": field})

    @app.exception_handler(DataError)
    async def data_error(request: Request, exc: DataError) -> Response:
        # The last line of defence: input validation should have caught this first.
        log.warning("value rejected by the database: %s", type(exc.orig).__name__)
        return error_response(
            request, 422, "validation_error", "a value is too long or out of range for its field"
        )

    @app.exception_handler(OperationalError)
    async def operational_error(request: Request, exc: OperationalError) -> Response:
        log.error("database unavailable: %s", type(exc.orig).__name__)
        return error_response(
            request,
            503,
            "unavailable",
            "the database is busy or unavailable; try again",
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(SQLAlchemyTimeout)
    async def pool_exhausted(request: Request, exc: SQLAlchemyTimeout) -> Response:
        log.error("no database connection free within the pool timeout")
        return error_response(
            request,
            503,
            "unavailable",
            "the server is busy; try again",
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            400: "unreadable_body",
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
        }.get(exc.status_code, "http_error")
        return error_response(
            request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        # by route template: a raw path can carry a card number
        log.exception("unhandled error on %s %s", request.method, route_template(request.scope))
        return error_response(request, 500, "internal_error", "something went wrong on our side")


CSP_PAGES = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    f"script-src 'self' {IMPORT_MAP_HASH}; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


# The phone borrow page reads barcodes with the camera; the 3D twin will ask for the headset
# (WebXR) and the position; nothing else.
PERMISSIONS_POLICY = b"camera=(self), microphone=(), geolocation=(self), xr-spatial-tracking=(self)"


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app, self.hsts = app, hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"DENY",
                    b"referrer-policy": b"same-origin",
                    b"permissions-policy": PERMISSIONS_POLICY,
                    b"content-security-policy": CSP_PAGES.encode(),
                    b"cross-origin-opener-policy": b"same-origin",
                }
                if self.hsts:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                headers += [(k, v) for k, v in extra.items() if k not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ContainErrors:
    """The outermost layer: no exception reaches the server once the answer is complete.

    Starlette's ServerErrorMiddleware sends the 500 from the error table and then raises the
    exception again; uvicorn, seeing it, drops the keep-alive connection without a word, and
    with it the request the client sends next. The error table has logged it by then."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = finished = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if finished:
                return
            if started:
                raise  # half an answer: only closing the connection tells the client
            # The error table itself failed: answer, and end a connection in an unknown state.
            log.exception("unhandled error with no answer on %s", route_template(scope))
            body = json.dumps(
                error_body("internal_error", "something went wrong on our side")
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
                }
            )
            await send({"type": "http.response.body", "body": body})


class Biblioverse(FastAPI):
    """FastAPI with ContainErrors outside Starlette's ServerErrorMiddleware, which FastAPI
    always puts outermost."""

    def build_middleware_stack(self) -> ASGIApp:
        return ContainErrors(super().build_middleware_stack())


class _BodyTooLarge(HTTPException):
    """Raised while the app reads a chunked body; an HTTP error, so FastAPI lets it through
    to the error table instead of calling it an unreadable body."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over {max_bytes} bytes")


class BodyLimit:
    """Refuse request bodies over the limit with the one error shape: by Content-Length up
    front, and by counting for bodies sent in chunks."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            error_body("body_too_large", f"the request body is over {self.max_bytes} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)


class PagesSession(SessionMiddleware):
    """The signed session cookie of the pages (staff and reader sign-in), not read or
    written for the API under /api/, which authenticates each request by its bearer token
    or device key."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


class LocaleMiddleware:
    """Sets the request's locale: the 'lang' cookie, else Accept-Language."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            i18n.set_locale(
                i18n.negotiate(request.cookies.get("lang"), request.headers.get("accept-language"))
            )
        await self.app(scope, receive, send)


def route_template(scope: Scope) -> str:
    """The matched route's template with its router prefix ('/api/v1/readers/{reader_id}'):
    the raw path would give every reader their own metric label."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if template:
        return str(template)
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


class RequestMetrics:
    """Counts and times each request by route template, and logs one line for it.

    Pure ASGI (not BaseHTTPMiddleware): it sees the router's scope after the app ran and
    does not wrap the body stream, so errors raised while reading a body keep their type."""

    def __init__(self, app: ASGIApp, *, requests: Counter, latency: Histogram) -> None:
        self.app, self.requests, self.latency = app, requests, latency
        self._kept: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            name, method = route_template(scope), scope["method"]
            elapsed = time.perf_counter() - start
            counter, histogram = self._children(method, name, status)
            counter.inc()
            histogram.observe(elapsed)
            access_log.info("%s %s %s %.1fms", method, name, status, elapsed * 1e3)

    def _children(self, method: str, name: str, status: int) -> tuple[Any, Any]:
        """The counter and histogram of these labels, kept: ``labels()`` takes a lock and
        checks its arguments on every call. Route templates and statuses are few."""
        key = (method, name, status)
        found = self._kept.get(key)
        if found is None:
            found = (
                self.requests.labels(method, name, str(status)),
                self.latency.labels(method, name),
            )
            self._kept[key] = found
        return found


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name, such as the test client's
        return False


def _metrics_allowed(request: Request, settings: Settings) -> bool:
    if not settings.metrics_enabled:
        return False
    if settings.metrics_token is None:
        return _loopback(request.client.host if request.client else None)
    scheme, _, sent = request.headers.get("authorization", "").partition(" ")
    expected = settings.metrics_token.encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), expected)


def install_metrics(app: FastAPI, settings: Settings) -> None:
    registry = CollectorRegistry()
    requests = Counter(
        "biblioverse_http_requests_total",
        "HTTP requests",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "biblioverse_http_request_duration_seconds",
        "HTTP request latency",
        ["method", "route"],
        registry=registry,
    )
    app.add_middleware(RequestMetrics, requests=requests, latency=latency)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        # Refused as if absent: a scanner learns nothing, the operator reads the setting.
        if not _metrics_allowed(request, settings):
            raise StarletteHTTPException(404)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def rebuild_node_index(
    settings: Settings,
    factory: sessionmaker[Session],
    index: TantivyIndex,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """This node's search index again from the database, and the time it began written
    beside it: a new consumer of the stream starts from then (ADR 0034)."""
    started = utcnow()  # before the snapshot the index is built from
    with transaction(factory) as session:
        n = rebuild_index(session, index, progress=progress)
    settings.index_built_file.write_text(started.isoformat())
    return n


def _rebuild_after_gap(app: FastAPI, settings: Settings) -> Callable[[int], None]:
    """The node was away longer than the stream keeps events: its index is rebuilt, once
    for all its web workers (a lock file; a worker that waited finds it done)."""

    def rebuild(missed: int) -> None:
        noticed = utcnow()
        lock = settings.index_built_file.with_suffix(".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            built = settings.index_built_file
            if built.exists() and dt.datetime.fromisoformat(built.read_text().strip()) > noticed:
                return  # another worker of this node rebuilt it meanwhile
            n = rebuild_node_index(settings, app.state.session_factory, app.state.search_index)
            logging.getLogger(__name__).warning(
                "node %s had missed %d events: its search index was rebuilt (%d records)",
                settings.node_name,
                missed,
                n,
            )
        finally:
            os.close(fd)

    return rebuild


def _follow_the_stream(app: FastAPI, settings: Settings) -> jetstream.Link:
    """Several nodes (ADR 0034): this process publishes the outbox to the NATS stream and
    follows it, as its node (the search index) and for the work done once."""
    assert settings.nats_url is not None
    link = jetstream.Link(
        settings.nats_url,
        stream=settings.nats_stream,
        subject=settings.nats_subject,
        max_age_s=settings.nats_max_age_s,
    )
    link.start()
    handlers, merge = app.state.event_handlers, app.state.event_merge
    node = jetstream.node_consumer(settings.node_name)
    built = settings.index_built_file
    since = dt.datetime.fromisoformat(built.read_text().strip()) if built.exists() else None
    link.follow(
        node,
        jetstream.node_handler(handlers, merge),
        since=since,
        on_gap=_rebuild_after_gap(app, settings),
    )
    link.follow(jetstream.ONCE, jetstream.once_handler(app.state.session_factory, handlers))
    return link


def _publish_and_apply(app: FastAPI, link: jetstream.Link) -> events.Deliver:
    """A request's urgent events: to the stream, then to this node's own state at once (the
    cataloguer searches the node that saved the record); its consumer applies them again,
    which changes nothing."""

    def deliver(rows: Sequence[Any]) -> None:
        link.publish(rows)
        events.deliver_rows(
            rows, handlers=app.state.event_handlers, merge=app.state.event_merge, scope="node"
        )

    return deliver


# Accounts answers deps.Principals: its routes use deps, so deps cannot import accounts.
_principals: Principals = accounts


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    # a mistake in the libraries' networks is named now, not when a reader borrows
    libraries.parse_networks(settings.library_networks)
    engine = make_engine(settings.effective_database_url)
    # Reads get their own pool: a write request that refreshes the search index after its
    # commit needs a reading connection while it still holds its own, and with one pool a
    # burst of writers could hold every connection and wait for each other.
    read_engine = make_engine(settings.effective_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        link = _follow_the_stream(app, settings) if settings.nats_url else None
        relay = events.Relay(
            app.state.session_factory,
            app.state.read_session_factory,
            app.state.event_handlers,
            app.state.event_merge,
            deliver=link.publish if link else None,
            deliver_now=_publish_and_apply(app, link) if link else None,
        )
        relay.start()
        app.state.relay = relay
        mqtt = None
        if settings.mqtt_url:
            ingestor = Ingestor(app.state.session_factory, after_alarms=relay.nudge)
            mqtt = MqttIngestion(ingestor, settings.mqtt_url)
            if not mqtt.start():
                logging.getLogger(__name__).warning("MQTT broker not reachable yet; retrying")
        app.state.mqtt = mqtt
        watch = OfflineWatch(
            app.state.session_factory,
            after=dt.timedelta(seconds=settings.device_offline_s),
            every=settings.offline_check_s,
            on_change=relay.nudge,
        )
        if settings.offline_check_s:
            watch.start()
            app.state.linkage.start_retries(settings.offline_check_s)
        app.state.offline_watch = watch
        yield
        if settings.offline_check_s:
            watch.stop()
        if mqtt is not None:
            mqtt.stop()
        app.state.relay = None
        relay.stop()
        if link is not None:
            link.stop()
        app.state.linkage.close()
        engine.dispose()
        read_engine.dispose()

    app = Biblioverse(
        title="Biblioverse",
        version=__version__,
        description="Smart library platform: consortium, readers, catalog, circulation, devices.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        # The documentation's order; the routes are matched busiest first (see below).
        openapi_tags=[
            {"name": name}
            for name in (
                "accounts",
                "libraries",
                "readers",
                "catalog",
                "circulation",
                "devices",
                "building",
                "twin",
                "ops",
            )
        ],
        lifespan=lifespan,
        # FastAPI's own OpenTelemetry hooks, off: the app counts and times requests itself
        # (RequestMetrics, /metrics), and the hooks looked for a tracer on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.settings = settings
    app.state.principals = _principals
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.read_session_factory = make_session_factory(read_engine, read_only=True)

    install_error_handlers(app)
    install_metrics(app, settings)

    app.state.search_index = TantivyIndex(settings.index_dir)
    app.state.unit_names = libraries.UnitNameCache(app.state.read_session_factory)
    app.state.event_handlers, app.state.event_merge = catalog_subscribers(
        app.state.read_session_factory, lambda: app.state.search_index
    )
    # A reader's data export: each context that keeps records of readers adds its sections.
    app.state.reader_export = [circulation.reader_data]
    # The devices page: each device context adds what it knows of its devices (ADR 0038).
    app.state.device_details = [sip2.device_details]
    app.state.relay = None  # until the lifespan starts it: events are published inline
    app.state.twins = Twins()  # routing graphs, rebuilt from the database on demand
    app.state.linkage = Linkage(
        app.state.session_factory,
        publish=mqtt_publisher(settings.mqtt_url) if settings.mqtt_url else None,
    )
    events.declare(app.state.linkage, "once")  # actions in the world, taken once
    for topic in ("alarm.raised", "alarm.resolved"):
        app.state.event_handlers.setdefault(topic, []).append(app.state.linkage)

    def nudge_relay() -> None:  # the linkage rules hear of an alarm a subscriber raised
        if app.state.relay is not None:
            app.state.relay.nudge()

    gate_alarms = GateAlarms(app.state.session_factory, after=nudge_relay)
    events.declare(gate_alarms, "once")  # an alarm in the shared database
    app.state.event_handlers.setdefault("gate.alarm", []).append(gate_alarms)

    add_search_route(app, "/api/v1", ERROR_RESPONSES)  # first: the busiest route
    # Then circulation, the busiest writes: a request is matched against the routes in
    # order, and matching through the routers before it showed in a web worker's profile
    # under check-outs and check-ins. No other router has a /circulation path.
    for router in (
        circulation_router,
        accounts_router,
        libraries_router,
        readers_router,
        catalog_router,
        shelves_router,
        building_router,
        twin_router,
    ):
        app.include_router(router, prefix="/api/v1", responses=ERROR_RESPONSES)

    @app.get("/health", tags=["ops"], summary="Liveness and database reachability")
    def health() -> JSONResponse:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return JSONResponse({"status": "ok", "version": __version__, "database": "ok"})
        except OperationalError:
            return JSONResponse({"status": "degraded", "database": "unavailable"}, 503)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return pages.api_docs_page()

    # Pages: no two routers have paths that overlap, so their order decides nothing.
    for page_router in (
        pages.router,
        libraries_pages.router,
        accounts_pages.router,
        readers_pages.router,
        circulation_pages.router,
        catalog_pages.router,
        catalog_console.router,
        circulation_console.router,
        reader_record_pages.router,
        devices_pages.router,
        sip2_pages.router,
        shelves_pages.router,
        building_pages.router,
        twin_pages.router,
    ):
        app.include_router(page_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    app.add_middleware(
        PagesSession,
        secret_key=settings.effective_secret_key,
        session_cookie="bv_session",
        max_age=settings.session_max_age_s,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    app.add_middleware(LocaleMiddleware)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    if settings.trusted_proxies.strip():
        # outermost, so that everything after it (throttling, logs) sees the real client
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app
