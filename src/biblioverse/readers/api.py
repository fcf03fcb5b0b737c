"""HTTP API of reader accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from biblioverse.access import Actor, Permission
from biblioverse.deps import CurrentActor, CurrentReader, DbSession, Now, require_permission
from biblioverse.fields import DbId, Offset
from biblioverse.readers import service
from biblioverse.readers.rules import Status
from biblioverse.readers.schemas import (
    ReaderOut,
    ReaderPage,
    ReaderSummary,
    RegistrationIn,
    StaffChangeIn,
    StaffReaderIn,
)

router = APIRouter(prefix="/readers", tags=["readers"])
ReaderDesk = Annotated[Actor, Depends(require_permission(Permission.READERS_READ))]
ReaderManager = Annotated[Actor, Depends(require_permission(Permission.READERS_MANAGE))]


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    summary="Self-service card registration (public); the card is pending until a desk "
    "checks the reader's identity",
)
def register(body: RegistrationIn, session: DbSession, now: Now) -> ReaderOut:
    reader = service.register_online(session, service.NewReader(**body.model_dump()), at=now)
    return ReaderOut.of(reader, service.local_today(now))


@router.get("/me", summary="The signed-in reader's own account")
def me(actor: CurrentReader, session: DbSession, now: Now) -> ReaderOut:
    return ReaderOut.of(service.get(session, actor.id), service.local_today(now))


@router.get("", summary="Readers whose home library is in the caller's scope")
def search(
    actor: ReaderDesk,
    session: DbSession,
    now: Now,
    q: Annotated[str, Query(max_length=200)] = "",
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> ReaderPage:
    today = service.local_today(now)
    rows, total = service.search(
        session, actor, q=q, status=status, today=today, limit=limit, offset=offset
    )
    return ReaderPage(total=total, items=[ReaderOut.of(r, today) for r in rows])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Register a reader at a desk; a reader with the same name and birth date on file "
    "is answered 409 possible_duplicate with their cards, unless duplicate_ok",
)
def create(body: StaffReaderIn, actor: ReaderManager, session: DbSession, now: Now) -> ReaderOut:
    data = service.NewReader(**body.model_dump(exclude={"duplicate_ok"}))
    reader = service.create_by_staff(session, actor, data, at=now, duplicate_ok=body.duplicate_ok)
    return ReaderOut.of(reader, service.local_today(now))


@router.get(
    "/by-card/{card_number}",
    summary="Look a card up at any desk of the consortium (full account only in scope)",
)
def by_card(
    card_number: str, actor: ReaderDesk, session: DbSession, now: Now
) -> ReaderOut | ReaderSummary:
    reader = service.lookup_card(session, actor, card_number)
    today = service.local_today(now)
    if service.may_see_in_full(session, actor, reader):
        return ReaderOut.of(reader, today)
    return ReaderSummary.of(reader, today)


@router.get("/{reader_id}", summary="A reader's account: the reader or staff of the home library")
def get_reader(reader_id: DbId, actor: CurrentActor, session: DbSession, now: Now) -> ReaderOut:
    return ReaderOut.of(service.visible(session, actor, reader_id), service.local_today(now))


@router.patch("/{reader_id}", summary="Block, unblock, extend or re-categorise a card")
def change(
    reader_id: DbId, body: StaffChangeIn, actor: ReaderManager, session: DbSession, now: Now
) -> ReaderOut:
    data = body.model_dump(exclude_unset=True)
    change = service.StaffChange(
        **{k: (v.value if hasattr(v, "value") else v) for k, v in data.items()}
    )
    reader = service.change_by_staff(session, actor, reader_id, change, at=now)
    return ReaderOut.of(reader, service.local_today(now))


@router.post("/{reader_id}/activate", summary="Activate a pending card after an identity check")
def activate(reader_id: DbId, actor: ReaderManager, session: DbSession, now: Now) -> ReaderOut:
    return ReaderOut.of(
        service.activate(session, actor, reader_id, at=now), service.local_today(now)
    )
