"""FastAPI dependencies: the request's transaction, clock and acting principal.

Dependencies that do no I/O are ``async``: FastAPI runs a plain function in a worker
thread, and under load those hops were a fifth of a web worker's time (py-spy); three of a
check-out's were for dependencies that only check or return a value.

Authorisation lives here, not in handlers: ``CurrentActor`` for any signed-in principal,
``CurrentReader`` for readers, ``require_permission(...)`` for staff with a role that grants
it somewhere; the service then checks the scope of the record it touches. A request run as a
:class:`UnitOfWork` names its check as the unit's ``allowed`` (``staff_only``, ...), which
runs as soon as the actor is known, before anything else.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from biblioverse import events, idempotency
from biblioverse.access import Actor, DeviceCapability, Permission
from biblioverse.db import utcnow
from biblioverse.errors import AuthenticationFailed, PermissionDenied
from biblioverse.settings import Settings

SIGN_IN_FIRST = "sign in first: send 'Authorization: Bearer <token>'"


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request owns the transaction: commit when the handler returns, roll back when
    it raises. Runs around the handler (scope='function') so the commit happens before the
    response is sent and a failed commit becomes an error response, not a lost write.
    Urgent events are published before the response; the others by the app's relay.

    Opening a session does no I/O (the connection is taken when the first statement is
    sent), so it is opened on the event loop; the commit, the publishing and the close go
    to a worker thread together. As a plain generator the dependency took two thread hops
    a request, one to open and one to close."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(_discard, session)
        raise
    await run_in_threadpool(_finish, session, request.app.state)


def _finish(session: Session, state: Any) -> None:
    try:
        session.commit()
        events.publish_after_commit(
            session,
            getattr(state, "relay", None),
            state.event_handlers,
            state.event_merge,
        )
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _discard(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_session, scope="function")]


async def get_read_session(request: Request) -> AsyncIterator[Session]:
    """For handlers that only read: a snapshot, never committed, never waiting for writers.
    Opened on the event loop, let go of in a worker thread (as :func:`get_session`)."""
    session: Session = request.app.state.read_session_factory()
    try:
        yield session
    finally:
        await run_in_threadpool(_discard, session)


ReadSession = Annotated[Session, Depends(get_read_session, scope="function")]


async def get_now() -> dt.datetime:
    return utcnow()


Now = Annotated[dt.datetime, Depends(get_now)]


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_settings)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class Principals(Protocol):
    """Who is behind a request's credentials (an API token, a device key, a page session).

    Accounts answers; ``create_app()`` puts it in ``app.state.principals``. Accounts' own
    routes use the dependencies here, so this module must not import accounts."""

    def resolve_token(self, session: Session, token: str, *, at: dt.datetime) -> Actor: ...

    def resolve_device(self, session: Session, key: str, *, at: dt.datetime) -> Actor: ...

    def actor_for(
        self, session: Session, kind: str, principal_id: int, *, epoch: int | None = None
    ) -> Actor | None: ...

    def sign_in_epoch(self, session: Session, kind: str, principal_id: int) -> int: ...


def principals(request: Request) -> Principals:
    found: Principals = request.app.state.principals
    return found


def resolve_actor(
    who: Principals, session: Session, token: str | None, device_key: str | None, now: dt.datetime
) -> Actor | None:
    """The actor behind a bearer token, else behind a device key; None without either."""
    if token:
        return who.resolve_token(session, token, at=now)
    if device_key:
        return who.resolve_device(session, device_key, at=now)
    return None


def optional_api_actor(request: Request, session: DbSession, now: Now) -> Actor | None:
    token, device_key = bearer_token(request), request.headers.get("x-device-key")
    return resolve_actor(principals(request), session, token, device_key, now)


OptionalActor = Annotated[Actor | None, Depends(optional_api_actor)]


async def api_actor(actor: OptionalActor) -> Actor:
    if actor is None:
        raise AuthenticationFailed(SIGN_IN_FIRST)
    return person_only(actor)


def person_only(actor: Actor) -> Actor:
    """Staff or a reader. A device's key opens only the endpoints its kind needs, each
    named by :func:`require_device`; everything else refuses it."""
    if actor.is_device:
        raise PermissionDenied(DEVICES_REFUSED)
    return actor


DEVICES_REFUSED = "a device's key does not open this; sign in as a person"

# Any signed-in person, staff or reader; never a device.
CurrentActor = Annotated[Actor, Depends(api_actor)]


async def reader_actor(actor: CurrentActor) -> Actor:
    if not actor.is_reader:
        raise PermissionDenied("this is for readers")
    return actor


CurrentReader = Annotated[Actor, Depends(reader_actor)]


def staff_only(actor: Actor) -> Actor:
    if not actor.is_staff:
        raise PermissionDenied("this is for library staff")
    return actor


async def staff_actor(actor: CurrentActor) -> Actor:
    return staff_only(actor)


CurrentStaff = Annotated[Actor, Depends(staff_actor)]


def require_permission(permission: Permission) -> Callable[[Actor], Awaitable[Actor]]:
    async def dependency(actor: CurrentStaff) -> Actor:
        if not actor.can(permission):
            raise PermissionDenied(f"your roles do not allow {permission.value}")
        return actor

    return dependency


async def device_actor(actor: OptionalActor) -> Actor:
    if actor is None:
        raise AuthenticationFailed(SIGN_IN_FIRST)
    if not actor.is_device:
        raise PermissionDenied("this is for registered devices")
    return actor


# Any registered device: what every kind may do (say it is alive, check its key).
CurrentDevice = Annotated[Actor, Depends(device_actor)]


def require_device(capability: DeviceCapability) -> Callable[[Actor], Awaitable[Actor]]:
    """A device whose kind needs ``capability``: a shelf posts tags, a sensor readings."""

    async def dependency(actor: CurrentDevice) -> Actor:
        if not actor.device_may(capability):
            raise PermissionDenied(f"a {actor.device_kind} may not do {capability.value}")
        return actor

    return dependency


@dataclass(frozen=True)
class IdempotencyRequest:
    key: str
    digest: str


async def idempotency_request(request: Request) -> IdempotencyRequest | None:
    """The request's ``Idempotency-Key`` header and a digest of what it asks, if it sent one.
    (Async so that it may read the body, which FastAPI has already cached.)"""
    raw = request.headers.get("idempotency-key")
    if raw is None:
        return None
    key = idempotency.validate(raw)
    body = await request.body()
    return IdempotencyRequest(key, idempotency.request_hash(request.method, request.url.path, body))


def once(
    session: Session,
    actor: Actor,
    request: IdempotencyRequest | None,
    now: dt.datetime,
    run: Callable[[], BaseModel],
    status_code: int = 200,
) -> BaseModel | Response:
    """Run ``run`` once per idempotency key: a retry with the same key and the same request
    gets the stored answer (marked ``Idempotent-Replayed: true``) and changes nothing."""
    if request is None:
        return run()
    principal = f"{actor.kind.value}:{actor.id}"
    stored = idempotency.replay(session, principal, request.key, request.digest, at=now)
    if stored is not None:
        return JSONResponse(
            stored.response,
            status_code=stored.status_code or 200,
            headers={"Idempotent-Replayed": "true"},
        )
    out = run()
    idempotency.remember(session, principal, request.key, status_code, out.model_dump(mode="json"))
    return out


# --- a write request's whole unit of work in one worker thread -----------------------------

T = TypeVar("T")

# Threads for :class:`UnitOfWork`, per process. A few: a unit of work spends most of its
# time in Python, under the GIL, and more threads only took the GIL from each other (ADR
# 0023; the runs are in docs/benchmarks.md). Fewer than db.POOL_SIZE, so the units
# alone never use up the engine's connections. A unit waits for others only as any
# transaction does (SQLite's one writer, a locked row); nothing in it waits for this pool.
UNIT_THREADS = 4
_UNITS = ThreadPoolExecutor(max_workers=UNIT_THREADS, thread_name_prefix="unit-of-work")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread, with the request's context variables (its locale).
    The event loop's executor, not anyio's: the hop costs the loop about half as much (no
    cancel scope, capacity limiter or run-variable look-ups), and a request dropped
    meanwhile leaves the thread to finish what it began."""
    call = contextvars.copy_context().run
    return await asyncio.get_running_loop().run_in_executor(_UNITS, call, fn, *args)


@dataclass(frozen=True)
class UnitOfWork:
    """A write request's work, run in one worker thread from start to end: the session
    opened, the actor behind the request's credentials resolved, the handler's work run
    once per idempotency key, the commit and the urgent events published, the session
    closed. Through the dependencies above the same request took four thread hops (the
    actor, the handler, FastAPI's check of the returned model, the commit): together a
    third of the event loop's time in bench/api_handlers.py (py-spy; ADR 0023)."""

    state: Any
    token: str | None
    device_key: str | None
    now: dt.datetime
    idem: IdempotencyRequest | None
    address: str = "unknown"  # the caller's, as client_address says

    async def run(
        self,
        work: Callable[[Session, Actor], BaseModel],
        status_code: int = 200,
        *,
        allowed: Callable[[Actor], object] | None = None,
    ) -> Response:
        """The response of ``work(session, actor)``: its model as JSON (as FastAPI writes
        it), or a stored answer replayed. ``allowed(actor)`` raises when the actor may not
        make this request; it runs before the idempotency key is looked at, so a refused
        caller is refused even with a key already used. Raises what the check, the work,
        the authentication or the commit raised: the app's error table answers it."""
        return await in_thread(self._run, work, status_code, allowed)

    def _run(
        self,
        work: Callable[[Session, Actor], BaseModel],
        status_code: int,
        allowed: Callable[[Actor], object] | None,
    ) -> Response:
        session: Session = self.state.session_factory()
        try:
            who: Principals = self.state.principals
            actor = resolve_actor(who, session, self.token, self.device_key, self.now)
            if actor is None:  # unit_of_work refused a request without credentials
                raise AuthenticationFailed(SIGN_IN_FIRST)
            person_only(actor)  # devices lend and take back over SIP2, not here
            if allowed is not None:
                allowed(actor)
            out = once(
                session, actor, self.idem, self.now, lambda: work(session, actor), status_code
            )
            if not isinstance(out, Response):
                out = Response(
                    out.__pydantic_serializer__.to_json(out, by_alias=True),
                    status_code=status_code,
                    media_type="application/json",
                )
        except BaseException:
            _discard(session)
            raise
        _finish(session, self.state)  # as get_session ends a request's session
        return out


async def unit_of_work(request: Request, now: Now) -> UnitOfWork:
    """A request without credentials is refused here, before its body and its idempotency
    key are validated (as ``CurrentActor`` refuses it); the credentials it sent are checked
    in the unit of work, after the body."""
    token, device_key = bearer_token(request), request.headers.get("x-device-key")
    if not token and not device_key:
        raise AuthenticationFailed(SIGN_IN_FIRST)
    idem = await idempotency_request(request)
    return UnitOfWork(request.app.state, token, device_key, now, idem, client_address(request))


Work = Annotated[UnitOfWork, Depends(unit_of_work)]
