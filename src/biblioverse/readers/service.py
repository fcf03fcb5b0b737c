"""Use cases of reader accounts: registration, look-up, staff changes, CSV import."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from biblioverse import libraries
from biblioverse.access import Actor, Permission, PrincipalKind
from biblioverse.audit import log_action
from biblioverse.errors import (
    DomainError,
    DuplicateValue,
    FieldError,
    PermissionDenied,
    ValidationFailed,
)
from biblioverse.events import record
from biblioverse.i18n import N_
from biblioverse.readers import rules
from biblioverse.readers.errors import InvalidStatusChange, PossibleDuplicate, ReaderNotFound
from biblioverse.readers.models import Reader, ReaderNote
from biblioverse.readers.rules import Category, Channel, Status
from biblioverse.security import hash_secret


def local_today(at: dt.datetime, tz: str = "Asia/Shanghai") -> dt.date:
    return at.astimezone(ZoneInfo(tz)).date()


@dataclass
class NewReader:
    name: str
    birth_date: dt.date | None
    category: str
    home_library_id: int | None
    email: str | None = None
    phone: str | None = None
    guardian_name: str | None = None
    password: str | None = None
    pin: str | None = None
    card_number: str | None = None
    expires_on: dt.date | None = None
    preferred_locale: str | None = None


def _clean_email(email: str | None) -> str | None:
    email = (email or "").strip().lower()
    return email or None


def _check_new(session: Session, data: NewReader, *, today: dt.date, channel: Channel) -> None:
    email = _clean_email(data.email)
    errors = rules.registration_errors(
        rules.RegistrationData(
            name=data.name,
            birth_date=data.birth_date,
            category=data.category,
            email=email,
            phone=(data.phone or "").strip() or None,
            guardian_name=data.guardian_name,
        ),
        today=today,
        channel=channel,
    )
    if data.card_number is not None:
        errors += rules.card_number_errors(data.card_number)
    if channel is Channel.ONLINE and not data.password:
        errors.append(FieldError("password", "required", N_("Choose a password.")))
    if data.password:
        errors += rules.password_errors(data.password, card=data.card_number or "")
    errors += rules.pin_errors(data.pin)
    if data.home_library_id is None:
        errors.append(FieldError("home_library_id", "required", N_("Choose your home library.")))
    else:
        try:
            home = libraries.get_unit(session, data.home_library_id)
            if home.kind == libraries.OrgKind.CONSORTIUM:
                raise libraries.OrgUnitNotFound(data.home_library_id)
        except libraries.OrgUnitNotFound:
            errors.append(FieldError("home_library_id", "unknown_library", N_("No such library.")))
    if errors:
        raise ValidationFailed(errors)
    if email and session.scalar(select(Reader.id).where(Reader.email == email)):
        raise DuplicateValue("reader", "email", email)
    if data.card_number and session.scalar(
        select(Reader.id).where(Reader.card_number == data.card_number)
    ):
        raise DuplicateValue("reader", "card_number", data.card_number)


def _insert(
    session: Session, data: NewReader, *, at: dt.datetime, today: dt.date, channel: Channel
) -> Reader:
    category = Category(data.category)
    status = rules.initial_status(channel)
    assert data.birth_date is not None and data.home_library_id is not None
    reader = Reader(
        card_number=data.card_number or "",
        name=data.name.strip(),
        email=_clean_email(data.email),
        phone=(data.phone or "").strip() or None,
        birth_date=data.birth_date,
        guardian_name=(data.guardian_name or "").strip() or None,
        home_library_id=data.home_library_id,
        category=category.value,
        status=status.value,
        expires_on=data.expires_on or rules.expiry_for(category, today),
        password_hash=hash_secret(data.password) if data.password else None,
        pin_hash=hash_secret(data.pin) if data.pin else None,
        registered_via=channel.value,
        keep_history=False,
        preferred_locale=data.preferred_locale,
        created_at=at,
        activated_at=at if status is Status.ACTIVE else None,
    )
    # A generated number may, rarely, be taken already: draw again inside a savepoint.
    for _attempt in range(5):
        if not data.card_number:
            reader.card_number = rules.new_card_number()
        try:
            with session.begin_nested():
                session.add(reader)
                session.flush()
            break
        except IntegrityError as exc:
            if data.card_number or "card_number" not in str(exc.orig):
                raise
    record(
        session,
        "reader.registered",
        {
            "reader_id": reader.id,
            "home_library_id": reader.home_library_id,
            "channel": channel.value,
        },
        at=at,
    )
    return reader


def check_online_registration(session: Session, data: NewReader, *, at: dt.datetime) -> None:
    """Raise what :func:`register_online` would refuse, without registering anyone (a form
    shows every field's error at once)."""
    data.card_number = None  # a reader never picks their own number
    _check_new(session, data, today=local_today(at), channel=Channel.ONLINE)


def register_online(session: Session, data: NewReader, *, at: dt.datetime) -> Reader:
    """Self-service card registration: the card works for digital services at once and
    for borrowing after an identity check at any desk (activation)."""
    check_online_registration(session, data, at=at)
    return _insert(session, data, at=at, today=local_today(at), channel=Channel.ONLINE)


def create_by_staff(
    session: Session,
    actor: Actor,
    data: NewReader,
    *,
    at: dt.datetime,
    channel: Channel = Channel.DESK,
    duplicate_ok: bool = True,
) -> Reader:
    """Register a reader at a desk (or by import). With ``duplicate_ok`` False, a reader
    already on file with the same name and birth date is refused as a possible duplicate,
    naming their cards, until the desk says it is another person."""
    today = local_today(at)
    _check_new(session, data, today=today, channel=channel)
    assert data.home_library_id is not None
    home = libraries.get_unit(session, data.home_library_id)
    if not actor.can(Permission.READERS_MANAGE, home.path):
        raise PermissionDenied("you may not register readers for this library")
    if not duplicate_ok:
        same = possible_duplicates(session, data.name, data.birth_date)
        if same:
            raise PossibleDuplicate(
                "a reader with this name and birth date is on file",
                details={
                    "field": "name",
                    "readers": [{"id": r.id, "card_number": r.card_number} for r in same],
                },
            )
    reader = _insert(session, data, at=at, today=today, channel=channel)
    log_action(
        session,
        actor,
        "reader.create",
        entity="reader",
        entity_id=reader.id,
        org_unit_id=reader.home_library_id,
        at=at,
    )
    return reader


def get(session: Session, reader_id: int) -> Reader:
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise ReaderNotFound(reader_id)
    return reader


_BY_CARD = select(Reader).where(Reader.card_number == bindparam("card"))  # built once


def actor_of(reader: Reader) -> Actor:
    """The reader as the one acting: signed in, or identified at a device."""
    return Actor(PrincipalKind.READER, reader.id, reader.name, org_unit_id=reader.home_library_id)


def by_card(session: Session, card_number: str) -> Reader | None:
    return session.scalar(_BY_CARD, {"card": card_number.strip()})


def by_login(session: Session, login: str) -> Reader | None:
    """A reader signs in with the card number or the e-mail address."""
    login = login.strip()
    if "@" in login:
        return session.scalar(select(Reader).where(Reader.email == login.lower()))
    return by_card(session, login)


def _home_path(session: Session, reader: Reader) -> str:
    return libraries.get_unit(session, reader.home_library_id).path


def access(session: Session, actor: Actor, reader: Reader) -> rules.ReaderAccess:
    """What ``actor`` may see and do of this reader's account (``rules.reader_access``)."""
    return rules.reader_access(actor, reader.id, _home_path(session, reader))


def require_access(
    session: Session, actor: Actor, reader_id: int, needed: rules.ReaderAccess
) -> tuple[Reader, rules.ReaderAccess]:
    """The reader and the actor's access to them, at least ``needed``; refused below it."""
    reader = get(session, reader_id)
    level = access(session, actor, reader)
    if level < needed:
        raise PermissionDenied("this reader's account is for their home library's staff")
    return reader, level


def may_see_in_full(session: Session, actor: Actor, reader: Reader) -> bool:
    return access(session, actor, reader) is rules.ReaderAccess.FULL


def visible(session: Session, actor: Actor, reader_id: int) -> Reader:
    """The reader's full account, for the reader themself or staff of the home library."""
    reader = get(session, reader_id)
    if not may_see_in_full(session, actor, reader):
        raise PermissionDenied("you may not see this reader's account")
    return reader


def lookup_card(session: Session, actor: Actor, card_number: str) -> Reader:
    """The card is valid across the consortium, so any desk may look it up (summary only
    unless the reader's home library is in the desk's scope)."""
    if not actor.can(Permission.READERS_READ):
        raise PermissionDenied("you may not look up reader cards")
    reader = by_card(session, card_number)
    if reader is None:
        raise ReaderNotFound(card_number)
    return reader


def search(
    session: Session,
    actor: Actor,
    *,
    q: str = "",
    status: Status | None = None,
    today: dt.date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Reader], int]:
    """Readers whose home library is in the actor's scope; ``status`` filters by the status
    a reader would see (an active card past its date counts as expired, as of ``today``)."""
    scopes = actor.scopes_for(Permission.READERS_READ)
    if not scopes:
        raise PermissionDenied("you may not list readers")
    unit_ids = libraries.units_within(session, scopes)
    query = select(Reader).where(Reader.home_library_id.in_(unit_ids))
    if q.strip():
        # Case-insensitive on every backend (PostgreSQL's LIKE is not); % and _ typed by
        # a librarian are literal characters, not wildcards.
        term = q.strip()
        query = query.where(
            or_(
                Reader.name.icontains(term, autoescape=True),
                Reader.card_number.icontains(term, autoescape=True),
                Reader.email.icontains(term, autoescape=True),
            )
        )
    if status is not None:
        if status in (Status.ACTIVE, Status.EXPIRED) and today is None:
            raise ValueError("filtering by active or expired needs today's date")
        if status is Status.ACTIVE:
            query = query.where(Reader.status == Status.ACTIVE.value, Reader.expires_on >= today)
        elif status is Status.EXPIRED:
            query = query.where(
                or_(
                    Reader.status == Status.EXPIRED.value,
                    and_(Reader.status == Status.ACTIVE.value, Reader.expires_on < today),
                )
            )
        else:
            query = query.where(Reader.status == status.value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Reader.name, Reader.id).limit(limit).offset(offset))
    return list(rows), total


def status_counts(session: Session, actor: Actor) -> dict[str, int]:
    """How many cards have each status among the readers whose home library the actor may
    read reader accounts of (none without that permission): the staff console's home."""
    if not actor.can(Permission.READERS_READ):
        return {}
    unit_ids = libraries.units_within(session, actor.scopes_for(Permission.READERS_READ))
    rows = session.execute(
        select(Reader.status, func.count())
        .where(Reader.home_library_id.in_(unit_ids))
        .group_by(Reader.status)
    ).all()
    return {str(s): int(n) for s, n in rows}


@dataclass
class StaffChange:
    status: str | None = None
    category: str | None = None
    expires_on: dt.date | None = None
    home_library_id: int | None = None
    blocked_reason: str | None = None


def change_by_staff(
    session: Session, actor: Actor, reader_id: int, change: StaffChange, *, at: dt.datetime
) -> Reader:
    reader = get(session, reader_id)
    if not actor.can(Permission.READERS_MANAGE, _home_path(session, reader)):
        raise PermissionDenied("you may not change readers of this library")
    changed: dict[str, str] = {}
    errors: list[FieldError] = []
    if change.category is not None:
        try:
            reader.category = Category(change.category).value
            changed["category"] = reader.category
        except ValueError:
            errors.append(FieldError("category", "invalid_category", N_("unknown reader category")))
    if change.home_library_id is not None:
        new_home = libraries.get_unit(session, change.home_library_id)
        if not actor.can(Permission.READERS_MANAGE, new_home.path):
            raise PermissionDenied("you may not move readers to that library")
        reader.home_library_id = new_home.id
        changed["home_library_id"] = str(new_home.id)
    if change.expires_on is not None:
        reader.expires_on = change.expires_on
        changed["expires_on"] = change.expires_on.isoformat()
    if change.status is not None:
        try:
            new_status = Status(change.status)
        except ValueError:
            errors.append(FieldError("status", "invalid_status", N_("unknown status")))
        else:
            current = Status(reader.status)
            if new_status is not current:
                if not rules.can_move(current, new_status):
                    raise InvalidStatusChange(
                        f"a {current.value} card cannot become {new_status.value}",
                        details={"field": "status", "from": current.value, "to": new_status.value},
                    )
                reader.status = new_status.value
                changed["status"] = new_status.value
                if new_status is Status.ACTIVE and reader.activated_at is None:
                    reader.activated_at = at
                reader.blocked_reason = (
                    change.blocked_reason if new_status is Status.BLOCKED else None
                )
    if errors:
        raise ValidationFailed(errors)
    if changed:
        log_action(
            session,
            actor,
            "reader.change",
            entity="reader",
            entity_id=reader.id,
            org_unit_id=reader.home_library_id,
            at=at,
            details={"fields": sorted(changed)},
        )
    return reader


def activate(session: Session, actor: Actor, reader_id: int, *, at: dt.datetime) -> Reader:
    """Identity checked at a desk: a pending online card becomes active, valid from today.
    Any desk of the consortium may do it, since the reader may walk into any library."""
    if not actor.can(Permission.READERS_MANAGE):
        raise PermissionDenied("you may not activate reader cards")
    reader = get(session, reader_id)
    errors = rules.activation_errors(Status(reader.status))
    if errors:
        raise InvalidStatusChange(errors[0].message, details=[e.as_dict() for e in errors])
    today = local_today(at)
    reader.status = Status.ACTIVE.value
    reader.activated_at = at
    reader.expires_on = rules.expiry_for(Category(reader.category), today)
    log_action(
        session,
        actor,
        "reader.activate",
        entity="reader",
        entity_id=reader.id,
        org_unit_id=reader.home_library_id,
        at=at,
    )
    return reader


@dataclass
class OwnChange:
    email: str | None = None
    phone: str | None = None
    keep_history: bool | None = None
    preferred_locale: str | None = None
    new_password: str | None = None
    new_pin: str | None = None


def needs_current_secret(reader: Reader, change: OwnChange) -> bool:
    """A new password, PIN or e-mail address (the address a new password would be sent
    to) needs the current password: what a stolen session must not be able to change."""
    new_email = change.email is not None and _clean_email(change.email) != reader.email
    return new_email or change.new_password is not None or change.new_pin is not None


def change_own(session: Session, actor: Actor, change: OwnChange) -> Reader:
    """Apply a reader's change to their own settings; the current password, where
    :func:`needs_current_secret` asks for it, has been checked by the caller (accounts)."""
    if not actor.is_reader:
        raise PermissionDenied("only readers change their own settings here")
    reader = get(session, actor.id)
    errors: list[FieldError] = []
    if change.email is not None:
        email = _clean_email(change.email)
        if email:
            errors += rules.email_errors(email)
            if email != reader.email and session.scalar(
                select(Reader.id).where(Reader.email == email)
            ):
                raise DuplicateValue("reader", "email", email)
        if not errors:
            reader.email = email
    if change.phone is not None:
        phone = change.phone.strip()
        phone_errs = rules.phone_errors(phone) if phone else []
        errors += phone_errs
        if not phone_errs:
            reader.phone = phone or None
    if change.keep_history is not None:
        reader.keep_history = change.keep_history
    if change.preferred_locale is not None:
        reader.preferred_locale = change.preferred_locale
    if change.new_password is not None:
        errors += rules.password_errors(
            change.new_password, field="new_password", card=reader.card_number
        )
        if not errors:
            reader.password_hash = hash_secret(change.new_password)
    if change.new_pin is not None:
        pin_errs = rules.pin_errors(change.new_pin)
        errors += [FieldError("new_pin", e.code, e.template, e.params) for e in pin_errs]
        if not pin_errs:
            reader.pin_hash = hash_secret(change.new_pin)
    if errors:
        raise ValidationFailed(errors)
    return reader


# --- CSV import ------------------------------------------------------------------

IMPORT_COLUMNS = (
    "card_number",
    "name",
    "email",
    "phone",
    "birth_date",
    "home_library",
    "category",
    "expires_on",
    "pin",
)
REQUIRED_COLUMNS = ("card_number", "name", "birth_date", "home_library", "category")


# --- the reader's own data, as one file to keep ------------------------------------------

# A context that keeps records of readers adds its sections to the export: a function of the
# session and the reader's id answering {section: rows}. create_app() registers them, as it
# does the event subscribers, so readers imports none of those contexts.
ExportSection = Callable[[Session, int], dict[str, list[dict[str, Any]]]]


def export_data(
    session: Session, actor: Actor, *, at: dt.datetime, sections: Sequence[ExportSection]
) -> dict[str, Any]:
    """Everything the library holds about the signed-in reader: their card, then each
    registered section (loans, holds, fees...) in the order they were registered."""
    if not actor.is_reader:
        raise PermissionDenied("only a reader exports their own data")
    reader = get(session, actor.id)
    units = libraries.unit_names(session)
    data: dict[str, Any] = {
        "exported_at": at.isoformat(),
        "reader": {
            "card_number": reader.card_number,
            "name": reader.name,
            "email": reader.email,
            "phone": reader.phone,
            "birth_date": reader.birth_date.isoformat(),
            "guardian_name": reader.guardian_name,
            "home_library": units[reader.home_library_id].code,
            "category": reader.category,
            "status": reader.status,
            "expires_on": reader.expires_on.isoformat(),
            "registered_via": reader.registered_via,
            "keep_history": reader.keep_history,
            "preferred_locale": reader.preferred_locale,
            "created_at": reader.created_at.isoformat(),
        },
    }
    for section in sections:
        data.update(section(session, reader.id))
    return data


@dataclass
class RowError:
    line: int
    card_number: str
    field: str
    message: str


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({e.line for e in self.errors})


class ImportFileInvalid(DomainError):
    code = "import_file_invalid"


def _parse_date(value: str, name: str) -> dt.date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            [
                FieldError(
                    name,
                    "invalid_date",
                    N_("%(value)r is not a date (YYYY-MM-DD)"),
                    {"value": value},
                )
            ]
        ) from None


def decode_csv(raw: bytes) -> str:
    """UTF-8 (with or without BOM) or GB18030, which Chinese spreadsheets often save."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileInvalid("the file is neither UTF-8 nor GB18030 text")


def count_rows(text: str) -> int:
    return max(0, sum(1 for _ in csv.reader(io.StringIO(text))) - 1)


def import_csv(
    session: Session,
    actor: Actor,
    text: str,
    *,
    at: dt.datetime,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import readers from CSV text. Each row stands alone: a bad row is reported with its
    line and field and the good rows are kept. Re-running is safe: a card already on file
    is reported as a duplicate, not imported twice."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ImportFileInvalid(
            f"missing column(s): {', '.join(missing)}",
            details={"missing": missing, "expected": list(IMPORT_COLUMNS)},
        )
    reader.fieldnames = header
    codes = {u.code: u.id for u in libraries.unit_names(session).values()}
    report = ImportReport()
    rows: Iterable[dict[str, str | None]] = reader
    for n, row in enumerate(rows, start=2):
        card = (row.get("card_number") or "").strip()
        try:
            if None in row:
                raise ValidationFailed(
                    [
                        FieldError(
                            "row", "too_many_fields", N_("the row has more fields than the header")
                        )
                    ]
                )
            home_code = (row.get("home_library") or "").strip()
            if home_code not in codes:
                raise ValidationFailed(
                    [
                        FieldError(
                            "home_library",
                            "unknown_library",
                            N_("no library with code %(code)r"),
                            {"code": home_code},
                        )
                    ]
                )
            data = NewReader(
                name=row.get("name") or "",
                birth_date=_parse_date(row.get("birth_date") or "", "birth_date"),
                category=(row.get("category") or "").strip(),
                home_library_id=codes[home_code],
                email=row.get("email"),
                phone=row.get("phone"),
                pin=(row.get("pin") or "").strip() or None,
                card_number=card,
                expires_on=_parse_date(row.get("expires_on") or "", "expires_on"),
            )
            with session.begin_nested():
                create_by_staff(session, actor, data, at=at, channel=Channel.IMPORT)
            report.imported += 1
        except ValidationFailed as exc:
            report.errors += [RowError(n, card, e.field, e.message) for e in exc.errors]
        except DuplicateValue as exc:
            report.errors.append(RowError(n, card, exc.field, exc.message))
        except PermissionDenied as exc:
            report.errors.append(RowError(n, card, "home_library", exc.message))
        if progress:
            progress(n - 1)
    return report


# A block set by a self-service machine (SIP2 "block patron": a card reported stolen was
# presented, say) starts with this; only such a block may be lifted by a machine.
DEVICE_BLOCK = "SIP2: "


def block_at_device(
    session: Session, actor: Actor, reader_id: int, reason: str, *, at: dt.datetime
) -> Reader:
    """A machine blocks the card it holds; staff see the machine's reason and lift it."""
    reader = get(session, reader_id)
    if reader.status != Status.BLOCKED.value:
        reader.status = Status.BLOCKED.value
        reader.blocked_reason = (DEVICE_BLOCK + (reason.strip() or actor.display_name))[:200]
        log_action(
            session,
            actor,
            "reader.block",
            entity="reader",
            entity_id=reader.id,
            org_unit_id=reader.home_library_id,
            at=at,
            details={"reason": reader.blocked_reason},
        )
    return reader


def enable_at_device(session: Session, actor: Actor, reader_id: int, *, at: dt.datetime) -> Reader:
    """Lift a block a machine set. A block staff set stays: the card is still blocked."""
    reader = get(session, reader_id)
    if reader.status == Status.BLOCKED.value and (reader.blocked_reason or "").startswith(
        DEVICE_BLOCK
    ):
        reader.status = Status.ACTIVE.value
        reader.blocked_reason = None
        log_action(
            session,
            actor,
            "reader.enable",
            entity="reader",
            entity_id=reader.id,
            org_unit_id=reader.home_library_id,
            at=at,
        )
    return reader


# --- the reader record at a staff desk (issue 29) ------------------------------------------


def _managed(session: Session, actor: Actor, reader_id: int) -> Reader:
    """The reader, for staff who manage readers of the reader's home library (ADR 0025:
    another library's desk serves the reader but does not change their card)."""
    reader = get(session, reader_id)
    if not actor.is_staff or not actor.can(Permission.READERS_MANAGE, _home_path(session, reader)):
        raise PermissionDenied("the card is changed by its home library's staff")
    return reader


def _audit(
    session: Session,
    actor: Actor,
    action: str,
    reader: Reader,
    at: dt.datetime,
    details: dict[str, Any] | None = None,
) -> None:
    log_action(
        session,
        actor,
        action,
        entity="reader",
        entity_id=reader.id,
        org_unit_id=reader.home_library_id,
        at=at,
        details=details,
    )


def renew_card(session: Session, actor: Actor, reader_id: int, *, at: dt.datetime) -> Reader:
    """Renew the card for its category's period (``rules.renewed_expiry``); an expired card
    becomes active again."""
    reader = _managed(session, actor, reader_id)
    errors = rules.renewal_errors(Status(reader.status))
    if errors:
        raise InvalidStatusChange(errors[0].message, details=[e.as_dict() for e in errors])
    before = reader.expires_on
    reader.expires_on = rules.renewed_expiry(
        Category(reader.category), reader.expires_on, local_today(at)
    )
    reader.status = Status.ACTIVE.value
    _audit(
        session,
        actor,
        "reader.renew_card",
        reader,
        at,
        {"from": before.isoformat(), "to": reader.expires_on.isoformat()},
    )
    return reader


def block(
    session: Session, actor: Actor, reader_id: int, reason: str, *, at: dt.datetime
) -> Reader:
    """Block the card, saying why; the reason is shown at every desk of the home library."""
    reader = _managed(session, actor, reader_id)
    errors = rules.reason_errors(reason)
    if errors:
        raise ValidationFailed(errors)
    current = Status(reader.status)
    if not rules.can_move(current, Status.BLOCKED):
        raise InvalidStatusChange(
            f"a {current.value} card cannot become blocked",
            details={"field": "status", "from": current.value, "to": Status.BLOCKED.value},
        )
    reader.status = Status.BLOCKED.value
    reader.blocked_reason = reason.strip()
    _audit(session, actor, "reader.block", reader, at, {"reason": reader.blocked_reason})
    return reader


def unblock(
    session: Session, actor: Actor, reader_id: int, reason: str, *, at: dt.datetime
) -> Reader:
    """Lift a block (staff's or a machine's), saying why; the card is active again."""
    reader = _managed(session, actor, reader_id)
    errors = rules.reason_errors(reason)
    if errors:
        raise ValidationFailed(errors)
    if reader.status != Status.BLOCKED.value:
        raise InvalidStatusChange(
            "the card is not blocked",
            details={"field": "status", "from": reader.status, "to": Status.ACTIVE.value},
        )
    lifted = reader.blocked_reason or ""
    reader.status = Status.ACTIVE.value
    reader.blocked_reason = None
    _audit(session, actor, "reader.unblock", reader, at, {"reason": reason.strip(), "was": lifted})
    return reader


def change_contact(
    session: Session,
    actor: Actor,
    reader_id: int,
    *,
    email: str,
    phone: str,
    at: dt.datetime,
) -> Reader:
    """Staff correct a reader's e-mail address and phone number (empty clears them). The
    audit names the fields changed, never their values."""
    reader = _managed(session, actor, reader_id)
    errors: list[FieldError] = []
    new_email = _clean_email(email)
    if new_email:
        errors += rules.email_errors(new_email)
    new_phone = phone.strip() or None
    if new_phone:
        errors += rules.phone_errors(new_phone)
    if errors:
        raise ValidationFailed(errors)
    if (
        new_email
        and new_email != reader.email
        and session.scalar(select(Reader.id).where(Reader.email == new_email))
    ):
        raise DuplicateValue("reader", "email", new_email)
    changed = [
        name
        for name, old, new in (
            ("email", reader.email, new_email),
            ("phone", reader.phone, new_phone),
        )
        if old != new
    ]
    reader.email, reader.phone = new_email, new_phone
    if changed:
        _audit(session, actor, "reader.contact", reader, at, {"fields": changed})
    return reader


def add_note(
    session: Session, actor: Actor, reader_id: int, text: str, *, at: dt.datetime
) -> ReaderNote:
    """A note for staff on the reader's record (never shown to the reader)."""
    reader = _managed(session, actor, reader_id)
    errors = rules.note_errors(text)
    if errors:
        raise ValidationFailed(errors)
    note = ReaderNote(
        reader_id=reader.id,
        staff_id=actor.id,
        org_unit_id=reader.home_library_id,  # written by the home library's staff
        text=text.strip(),
        created_at=at,
    )
    session.add(note)
    session.flush()
    _audit(session, actor, "reader.note", reader, at, {"note_id": note.id})
    return note


def notes_of(session: Session, actor: Actor, reader_id: int) -> list[ReaderNote]:
    """The staff notes on a reader, newest first: for staff who see the whole account."""
    reader = get(session, reader_id)
    if not actor.is_staff or not may_see_in_full(session, actor, reader):
        return []
    return list(
        session.scalars(
            select(ReaderNote)
            .where(ReaderNote.reader_id == reader.id)
            .order_by(ReaderNote.created_at.desc(), ReaderNote.id.desc())
        )
    )


def possible_duplicates(
    session: Session, name: str, birth_date: dt.date | None, *, limit: int = 5
) -> list[Reader]:
    """Readers already on file with the same name (case and spacing aside) and birth date:
    perhaps the same person registering again. The caller decides what may be shown."""
    key = rules.same_person_key(name)
    if not key or birth_date is None:
        return []
    same_day = session.scalars(
        select(Reader).where(Reader.birth_date == birth_date).order_by(Reader.id)
    )
    return [r for r in same_day if rules.same_person_key(r.name) == key][:limit]
