"""Use cases of staff accounts and of signing in, for people and devices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, and_, case, delete, literal, null, or_, select, update
from sqlalchemy.orm import Session

from biblioverse import libraries, readers, reference
from biblioverse.access import Actor, DeviceKind, Grant, Permission, PrincipalKind, Role
from biblioverse.accounts import rules
from biblioverse.accounts.errors import (
    AccountDisabled,
    BadCredentials,
    DeviceNotFound,
    DeviceRetired,
    StaffNotFound,
    TokenInvalid,
    WrongCurrentSecret,
)
from biblioverse.accounts.models import (
    ApiToken,
    DeviceKey,
    LoginThrottle,
    RoleGrant,
    SignInEpoch,
    StaffUser,
)
from biblioverse.audit import log_action
from biblioverse.db import UTCDateTime, upsert_insert
from biblioverse.errors import (
    AuthenticationFailed,
    DuplicateValue,
    FieldError,
    PermissionDenied,
    Throttled,
    ValidationFailed,
)
from biblioverse.i18n import N_
from biblioverse.security import hash_secret, needs_rehash, new_token, token_digest, verify_secret

# --- actors ----------------------------------------------------------------------


def actor_for_staff(session: Session, staff: StaffUser) -> Actor:
    units = libraries.unit_names(session) if staff.grants else {}
    grants = tuple(
        Grant(Role(g.role), units[g.org_unit_id].path, g.org_unit_id)
        for g in staff.grants
        if g.org_unit_id in units
    )
    return Actor(
        PrincipalKind.STAFF, staff.id, staff.full_name, grants, org_unit_id=staff.home_org_unit_id
    )


def actor_for_reader(reader: readers.Reader) -> Actor:
    return readers.actor_of(reader)


def actor_for(
    session: Session, kind: str, principal_id: int, *, epoch: int | None = None
) -> Actor | None:
    """The actor behind a session cookie or token, if the account still exists and may act.
    ``epoch``: the sign-in epoch a page session began in; an older one has been ended."""
    if epoch is not None and epoch != sign_in_epoch(session, kind, principal_id):
        return None
    if kind == PrincipalKind.STAFF:
        staff = session.get(StaffUser, principal_id)
        return actor_for_staff(session, staff) if staff and staff.active else None
    if kind == PrincipalKind.READER:
        reader = session.get(readers.Reader, principal_id)
        return actor_for_reader(reader) if reader else None
    return None


# --- staff -----------------------------------------------------------------------


def _ensure_can_grant(session: Session, actor: Actor | None, role: Role, unit_id: int) -> None:
    unit = libraries.get_unit(session, unit_id)
    if actor is not None and not actor.can_grant(role, unit.path):
        raise PermissionDenied(f"you may not grant the role {role.value} at {unit.code}")


def create_staff(
    session: Session,
    actor: Actor | None,
    *,
    username: str,
    full_name: str,
    password: str,
    home_org_unit_id: int,
    roles: Sequence[tuple[Role, int]] = (),
    email: str | None = None,
    at: dt.datetime,
) -> StaffUser:
    """Create a staff account. ``actor`` None is the system (first admin, demo)."""
    username = username.strip().lower()
    errors = rules.username_errors(username) + rules.staff_password_errors(password)
    if not full_name.strip():
        errors.append(FieldError("full_name", "required", N_("a name is required")))
    elif len(full_name.strip()) > 120:
        errors.append(FieldError("full_name", "too_long", N_("120 characters at most")))
    if email and (len(email) > 254 or "@" not in email):
        errors.append(FieldError("email", "invalid_email", N_("not an e-mail address")))
    if errors:
        raise ValidationFailed(errors)
    home = libraries.get_unit(session, home_org_unit_id)
    if actor is not None and not actor.can(Permission.STAFF_MANAGE, home.path):
        raise PermissionDenied("you may not add staff to this library")
    for role, unit_id in roles:
        _ensure_can_grant(session, actor, role, unit_id)
    if session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise DuplicateValue("staff user", "username", username)
    staff = StaffUser(
        username=username,
        full_name=full_name.strip(),
        email=(email or "").strip().lower() or None,
        password_hash=hash_secret(password),
        home_org_unit_id=home.id,
        active=True,
        created_at=at,
    )
    staff.grants = [RoleGrant(role=r.value, org_unit_id=u) for r, u in roles]
    session.add(staff)
    session.flush()
    if actor is not None:
        log_action(
            session,
            actor,
            "staff.create",
            entity="staff",
            entity_id=staff.id,
            org_unit_id=home.id,
            at=at,
            details={"username": username, "roles": [[r.value, u] for r, u in roles]},
        )
    return staff


def get_staff(session: Session, staff_id: int) -> StaffUser:
    staff = session.get(StaffUser, staff_id)
    if staff is None:
        raise StaffNotFound(staff_id)
    return staff


def _ensure_manages(session: Session, actor: Actor, staff: StaffUser) -> None:
    """The actor must manage staff at the target's home library and at every unit the
    target holds a role on: a branch librarian cannot lock out a consortium admin."""
    paths = [libraries.get_unit(session, staff.home_org_unit_id).path]
    paths += [libraries.get_unit(session, g.org_unit_id).path for g in staff.grants]
    if not all(actor.can(Permission.STAFF_MANAGE, p) for p in paths):
        raise PermissionDenied("you may not change this staff account")


def list_staff(session: Session, actor: Actor) -> list[StaffUser]:
    scopes = actor.scopes_for(Permission.STAFF_MANAGE)
    if not scopes:
        raise PermissionDenied("you may not list staff")
    unit_ids = libraries.units_within(session, scopes)
    return list(
        session.scalars(
            select(StaffUser)
            .where(StaffUser.home_org_unit_id.in_(unit_ids))
            .order_by(StaffUser.username)
        )
    )


def staff_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(StaffUser.id, StaffUser.full_name).where(StaffUser.id.in_(ids)))
    return {int(i): str(n) for i, n in rows}


def visible_staff(session: Session, actor: Actor, staff_id: int) -> StaffUser:
    staff = get_staff(session, staff_id)
    if actor.is_staff and actor.id == staff_id:
        return staff
    home = libraries.get_unit(session, staff.home_org_unit_id)
    if not actor.can(Permission.STAFF_MANAGE, home.path):
        raise PermissionDenied("you may not see this staff account")
    return staff


def change_staff(
    session: Session,
    actor: Actor,
    staff_id: int,
    *,
    full_name: str | None = None,
    active: bool | None = None,
    password: str | None = None,
    at: dt.datetime,
) -> StaffUser:
    staff = get_staff(session, staff_id)
    _ensure_manages(session, actor, staff)
    changed = []
    if full_name is not None:
        if not full_name.strip():
            raise ValidationFailed([FieldError("full_name", "required", N_("a name is required"))])
        staff.full_name = full_name.strip()
        changed.append("full_name")
    if active is not None:
        if not active and staff.id == actor.id:
            raise ValidationFailed(
                [FieldError("active", "self_lockout", N_("you cannot disable your own account"))]
            )
        staff.active = active
        changed.append("active")
    if password is not None:
        errors = rules.staff_password_errors(password)
        if errors:
            raise ValidationFailed(errors)
        staff.password_hash = hash_secret(password)
        changed.append("password")
        # a reset password is a new key: whoever held the old one is signed out
        end_sessions(session, PrincipalKind.STAFF.value, staff.id, at=at, keep_token=None)
    log_action(
        session,
        actor,
        "staff.change",
        entity="staff",
        entity_id=staff.id,
        org_unit_id=staff.home_org_unit_id,
        at=at,
        details={"fields": changed},
    )
    return staff


def grant_role(
    session: Session, actor: Actor, staff_id: int, role: Role, unit_id: int, *, at: dt.datetime
) -> RoleGrant:
    staff = get_staff(session, staff_id)
    _ensure_manages(session, actor, staff)
    _ensure_can_grant(session, actor, role, unit_id)
    existing = next(
        (g for g in staff.grants if g.role == role.value and g.org_unit_id == unit_id), None
    )
    if existing:
        return existing
    grant = RoleGrant(role=role.value, org_unit_id=unit_id)
    staff.grants.append(grant)
    session.flush()
    log_action(
        session,
        actor,
        "staff.grant",
        entity="staff",
        entity_id=staff.id,
        org_unit_id=unit_id,
        at=at,
        details={"role": role.value},
    )
    return grant


def revoke_role(
    session: Session, actor: Actor, staff_id: int, role: Role, unit_id: int, *, at: dt.datetime
) -> None:
    staff = get_staff(session, staff_id)
    _ensure_manages(session, actor, staff)
    _ensure_can_grant(session, actor, role, unit_id)
    staff.grants = [
        g for g in staff.grants if not (g.role == role.value and g.org_unit_id == unit_id)
    ]
    log_action(
        session,
        actor,
        "staff.revoke",
        entity="staff",
        entity_id=staff.id,
        org_unit_id=unit_id,
        at=at,
        details={"role": role.value},
    )


# --- signing in ------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottlePolicy:
    window_s: int = 900
    account_failures: int = 5
    address_failures: int = 30


_THROTTLES = cast(Table, LoginThrottle.__table__)


def check_throttle(session: Session, keys: Sequence[str], at: dt.datetime) -> None:
    """Raise Throttled if any of these keys (a person, an address) is locked at ``at``. A
    read, to refuse an attempt before its secret is checked (argon2): the attempt itself is
    counted, and judged by its count, with :func:`count_attempt`."""
    t = _THROTTLES
    states = session.execute(
        select(t.c.failures, t.c.window_start, t.c.locked_until).where(t.c.key.in_(keys))
    )
    for failures, window_start, locked_until in states:
        wait = rules.retry_after(rules.ThrottleState(failures, window_start, locked_until), at)
        if wait is not None:
            raise _throttled(wait)


def _throttled(wait: int) -> Throttled:
    return Throttled("too many failed sign-ins; try again later", retry_after_s=wait)


def _count(
    session: Session, key: str, limit: int, window_s: int, at: dt.datetime
) -> rules.ThrottleState:
    """One more attempt against ``key``, in one statement (INSERT ... ON CONFLICT DO UPDATE
    ... RETURNING): attempts made at once each add one and each see the others' count. The
    count starts again once its window, and any lock, is over; the attempt that reaches the
    limit locks the key for a window. Returns the key's state with this attempt."""
    t = _THROTTLES
    window = dt.timedelta(seconds=window_s)
    now, until = literal(at, UTCDateTime()), literal(at + window, UTCDateTime())
    over = or_(
        t.c.locked_until <= now,
        and_(t.c.locked_until.is_(None), t.c.window_start <= literal(at - window, UTCDateTime())),
    )
    first_lock = until if limit <= 1 else null()
    stmt = upsert_insert(session)(t).values(
        key=key, failures=1, window_start=at, locked_until=at + window if limit <= 1 else None
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.key],
        set_={
            "failures": case((over, 1), else_=t.c.failures + 1),
            "window_start": case((over, now), else_=t.c.window_start),
            "locked_until": case(
                (over, first_lock),
                (and_(t.c.locked_until.is_(None), t.c.failures + 1 >= limit), until),
                else_=t.c.locked_until,
            ),
        },
    ).returning(t.c.failures, t.c.window_start, t.c.locked_until)
    failures, window_start, locked_until = session.execute(stmt).one()
    return rules.ThrottleState(failures, window_start, locked_until)


def _uncount(session: Session, key: str, limit: int) -> None:
    """Take one attempt back from ``key`` (its row is still locked by the count); a count
    back at nought goes, so that an address where people only sign in leaves no row."""
    t = _THROTTLES
    session.execute(delete(t).where(t.c.key == key, t.c.failures <= 1))
    session.execute(
        update(t)
        .where(t.c.key == key, t.c.failures > 1)
        .values(
            failures=t.c.failures - 1,
            locked_until=case((t.c.failures - 1 >= limit, t.c.locked_until), else_=null()),
        )
    )


def count_attempt(
    session: Session,
    *,
    person: str | Sequence[str],
    address: str | None,
    policy: ThrottlePolicy,
    at: dt.datetime,
) -> None:
    """Count an attempt at a secret before the secret is judged, against the person it
    names (each person, when one login names several) and the address it came from (none
    for a kiosk's PIN). An attempt past any limit raises Throttled, whatever its secret,
    and counts only against the key that refused it. Then :func:`attempt_succeeded` if the
    secret was right; a wrong one stays counted (commit it: :func:`failures_kept`).

    On PostgreSQL a counted row stays locked until the transaction ends, so attempts on one
    person or from one address wait for each other's check."""
    people = [person] if isinstance(person, str) else list(person)
    counted: list[str] = []
    for key in people:
        state = _count(session, key, policy.account_failures, policy.window_s, at)
        if state.failures > policy.account_failures:
            for other in counted:  # not held against the others
                _uncount(session, other, policy.account_failures)
            raise _throttled(rules.retry_after(state, at) or policy.window_s)
        counted.append(key)
    if address is None:
        return
    state = _count(session, address, policy.address_failures, policy.window_s, at)
    if state.failures > policy.address_failures:
        for key in counted:  # not held against the people
            _uncount(session, key, policy.account_failures)
        raise _throttled(rules.retry_after(state, at) or policy.window_s)


def attempt_succeeded(
    session: Session, *, person: str, address: str | None, policy: ThrottlePolicy
) -> None:
    """The secret of a counted attempt was right: the person's count starts again, and the
    address's no longer holds this attempt (an address counts failures: a library's
    computers may share one)."""
    t = _THROTTLES
    session.execute(delete(t).where(t.c.key == person))
    if address is not None:
        _uncount(session, address, policy.address_failures)


@contextmanager
def failures_kept(session: Session) -> Iterator[None]:
    """Failed sign-ins must be counted even though the request fails: commit the count
    before the error leaves (the caller owns the transaction, and this is its choice)."""
    try:
        yield
    except (AuthenticationFailed, Throttled, WrongCurrentSecret):
        session.commit()
        raise


def person_key(kind: PrincipalKind, principal_id: int) -> str:
    """The throttle's key for a person, whichever secret or login they tried: a reader's
    card number and e-mail, the password on the web and the PIN at a kiosk share one count."""
    return f"{kind.value}#{principal_id}"


def _unknown_key(login: str) -> str:
    """The throttle's key for a login that names no one: the login as typed, one count
    whether it was tried as staff, as a reader or as either."""
    return f"login:{login.lower()}"


@dataclass
class _Candidate:
    key: str
    stored: str | None
    staff: StaffUser | None = None
    reader: readers.Reader | None = None


def _candidates(session: Session, kind: PrincipalKind | None, login: str) -> list[_Candidate]:
    """Who a login may name: a staff user by user name, a reader by card number or e-mail.
    A slot is kept, with no one in it, for each kind the login could name by its shape, so
    that the passwords checked (argon2) are as many whether or not anyone is found."""
    found: list[_Candidate] = []
    if kind in (None, PrincipalKind.STAFF) and (kind or rules.may_be_username(login)):
        staff = session.scalar(select(StaffUser).where(StaffUser.username == login.lower()))
        key = person_key(PrincipalKind.STAFF, staff.id) if staff else ""
        found.append(_Candidate(key, staff.password_hash if staff else None, staff=staff))
    if kind in (None, PrincipalKind.READER):
        reader = readers.by_login(session, login)
        key = person_key(PrincipalKind.READER, reader.id) if reader else ""
        found.append(_Candidate(key, reader.password_hash if reader else None, reader=reader))
    return found


def authenticate(
    session: Session,
    *,
    kind: PrincipalKind | None = None,
    login: str,
    secret: str,
    address: str,
    at: dt.datetime,
    policy: ThrottlePolicy,
) -> Actor:
    """Check the password of the person a login names: a staff user name, a reader's card
    number or e-mail; ``kind`` narrows the search to staff or readers (the API's choice).

    A login that names a staff user and a reader signs in the one whose password it is;
    both, the staff user (ADR 0035). Attempts are counted before the password is checked
    (:func:`count_attempt`), against every person the login names, or the login itself if
    it names no one, and the client address; a right one starts the person's count again,
    and is taken back from the others'. Use inside :func:`failures_kept` so that the count
    survives the failed request.
    """
    if kind not in (None, PrincipalKind.STAFF, PrincipalKind.READER):
        raise BadCredentials()
    login = login.strip()
    slots = _candidates(session, kind, login)
    keys = [c.key for c in slots if c.key] or [_unknown_key(login)]
    address_key = f"addr:{address}"
    count_attempt(session, person=keys, address=address_key, policy=policy, at=at)
    # every slot is checked, so that the time taken tells nothing of who exists
    right = [c for c in slots if verify_secret(c.stored, secret)]
    usable = [c for c in right if c.reader or (c.staff and c.staff.active)]
    if not right:
        raise BadCredentials()
    chosen = (usable or right)[0]  # staff first: _candidates puts them first
    attempt_succeeded(session, person=chosen.key, address=address_key, policy=policy)
    for other in keys:
        if other != chosen.key:  # the attempt was this person's, not a guess at the others
            _uncount(session, other, policy.account_failures)
    if chosen.staff is not None:
        staff = chosen.staff
        if not staff.active:
            raise AccountDisabled("this staff account is disabled")
        if needs_rehash(staff.password_hash):
            staff.password_hash = hash_secret(secret)
        staff.last_login_at = at
        return actor_for_staff(session, staff)
    reader = chosen.reader
    assert reader is not None
    if reader.password_hash and needs_rehash(reader.password_hash):
        reader.password_hash = hash_secret(secret)
    return actor_for_reader(reader)


def issue_token(
    session: Session, actor: Actor, *, at: dt.datetime, ttl_s: int
) -> tuple[str, dt.datetime]:
    if actor.kind not in (PrincipalKind.STAFF, PrincipalKind.READER):
        raise PermissionDenied("devices use their device key")
    token = new_token("bvt")
    expires = at + dt.timedelta(seconds=ttl_s)
    session.add(
        ApiToken(
            digest=token_digest(token),
            principal_kind=actor.kind.value,
            principal_id=actor.id,
            created_at=at,
            expires_at=expires,
            revoked_at=None,
        )
    )
    return token, expires


@dataclass(frozen=True)
class _KnownToken:
    kind: str
    principal_id: int
    expires_at: dt.datetime
    staff: Actor | None  # a staff token's actor, as its account, roles and libraries stand


_TOKEN_MEMO_SIZE = 10_000


def resolve_token(session: Session, token: str, *, at: dt.datetime) -> Actor:
    """The actor behind an API token. Tokens seen before are kept in a memo of this
    process (see :mod:`biblioverse.reference`): a revoked token, a deactivated account or
    a changed role is seen in this process at once and in the others within a second. A
    reader's token still reads the reader, whose row the request will most likely need."""
    digest = token_digest(token)
    memo: dict[str, _KnownToken] = reference.get(session, "accounts.tokens", lambda _s: {})
    known = memo.get(digest)
    if known is None:
        row = session.scalar(select(ApiToken).where(ApiToken.digest == digest))
        if row is None or row.revoked_at is not None:
            raise TokenInvalid("the token is unknown, revoked or expired")
        staff = None
        if row.principal_kind == PrincipalKind.STAFF:
            staff = actor_for(session, row.principal_kind, row.principal_id)
            if staff is None:
                raise TokenInvalid("the account behind this token can no longer sign in")
        known = _KnownToken(row.principal_kind, row.principal_id, row.expires_at, staff)
        if len(memo) >= _TOKEN_MEMO_SIZE:
            memo.clear()
        memo[digest] = known
    if known.expires_at <= at:
        raise TokenInvalid("the token is unknown, revoked or expired")
    actor = known.staff or actor_for(session, known.kind, known.principal_id)
    if actor is None:
        raise TokenInvalid("the account behind this token can no longer sign in")
    return actor


def revoke_token(session: Session, token: str, *, at: dt.datetime) -> None:
    row = session.scalar(select(ApiToken).where(ApiToken.digest == token_digest(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = at


# --- sessions: one person's sign-ins, ended together ----------------------------------


def sign_in_epoch(session: Session, kind: str, principal_id: int) -> int:
    row = session.get(SignInEpoch, (kind, principal_id))
    return row.epoch if row is not None else 0


def end_sessions(
    session: Session, kind: str, principal_id: int, *, at: dt.datetime, keep_token: str | None
) -> int:
    """End every page session and API token of this person but the token ``keep_token``
    (the one asking, if it asked by token). Returns the new epoch, in which the page
    session that asked may carry on."""
    row = session.get(SignInEpoch, (kind, principal_id), with_for_update=True)
    if row is None:
        row = SignInEpoch(principal_kind=kind, principal_id=principal_id, epoch=0, changed_at=at)
        session.add(row)
    row.epoch += 1
    row.changed_at = at
    kept = token_digest(keep_token) if keep_token else None
    live = select(ApiToken).where(
        ApiToken.principal_kind == kind,
        ApiToken.principal_id == principal_id,
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at > at,
    )
    for token in session.scalars(live):
        if token.digest != kept:
            token.revoked_at = at  # through the ORM, so every process's token memo forgets
    session.flush()
    return row.epoch


def sign_out(session: Session, actor: Actor, *, at: dt.datetime) -> None:
    """Signing out anywhere ends the person's every session and token: a session copied
    from a shared computer stops working too."""
    end_sessions(session, actor.kind.value, actor.id, at=at, keep_token=None)


@dataclass(frozen=True)
class OwnChanged:
    reader: readers.Reader
    epoch: int | None  # the new sign-in epoch when the change ended the other sessions


def change_own_account(
    session: Session,
    actor: Actor,
    change: readers.OwnChange,
    *,
    current_password: str | None,
    address: str,
    policy: ThrottlePolicy,
    keep_token: str | None,
    at: dt.datetime,
) -> OwnChanged:
    """A reader changes their own settings. A new password, PIN or e-mail address needs
    the current password (counted as a sign-in of that person before it is checked); a new
    password or PIN ends every other session and token of theirs. Use inside
    :func:`failures_kept`."""
    reader = readers.get(session, actor.id)
    needed = readers.needs_current_secret(reader, change)
    stored = reader.password_hash or reader.pin_hash
    person, address_key = person_key(PrincipalKind.READER, reader.id), f"addr:{address}"
    if needed:
        count_attempt(session, person=person, address=address_key, policy=policy, at=at)
    # A change refused in part is not written in part; the fields are checked before the
    # password, so that a typing mistake is named first.
    savepoint = session.begin_nested()
    try:
        reader = readers.change_own(session, actor, change)
    except BaseException:
        savepoint.rollback()
        if needed:  # refused before its password was looked at: not an attempt after all
            _uncount(session, person, policy.account_failures)
            _uncount(session, address_key, policy.address_failures)
        raise
    if needed and not verify_secret(stored, current_password or ""):
        savepoint.rollback()
        raise WrongCurrentSecret()
    savepoint.commit()
    if needed:
        attempt_succeeded(session, person=person, address=address_key, policy=policy)
    epoch = None
    if change.new_password is not None or change.new_pin is not None:
        epoch = end_sessions(session, actor.kind.value, actor.id, at=at, keep_token=keep_token)
    return OwnChanged(reader, epoch)


# --- devices ---------------------------------------------------------------------

DEVICE_KINDS = tuple(k.value for k in DeviceKind)


def create_device_key(
    session: Session,
    actor: Actor | None,
    *,
    name: str,
    kind: str,
    org_unit_id: int,
    at: dt.datetime,
) -> tuple[DeviceKey, str]:
    """Returns the device row and its key; the key is shown once and never stored."""
    unit = libraries.get_unit(session, org_unit_id)
    if actor is not None and not actor.can(Permission.DEVICES_MANAGE, unit.path):
        raise PermissionDenied("you may not register devices for this library")
    errors = []
    if kind not in DEVICE_KINDS:
        errors.append(
            FieldError(
                "kind", "invalid_kind", N_("one of %(kinds)s"), {"kinds": ", ".join(DEVICE_KINDS)}
            )
        )
    if not name.strip():
        errors.append(FieldError("name", "required", N_("a device name is required")))
    if errors:
        raise ValidationFailed(errors)
    key = new_token("bvd")
    device = DeviceKey(
        name=name.strip(),
        kind=kind,
        org_unit_id=unit.id,
        digest=token_digest(key),
        hint=key[:10],
        created_at=at,
    )
    session.add(device)
    session.flush()
    if actor is not None:
        log_action(
            session,
            actor,
            "device.create",
            entity="device",
            entity_id=device.id,
            org_unit_id=unit.id,
            at=at,
            details={"name": device.name, "kind": kind},
        )
    return device, key


def device_keys(session: Session, actor: Actor) -> list[DeviceKey]:
    """Every device, of every kind, retired ones too, of the libraries the actor manages
    devices of; by library, then name."""
    scopes = actor.scopes_for(Permission.DEVICES_MANAGE)
    if not scopes:
        return []
    units = libraries.units_within(session, scopes)
    return list(
        session.scalars(
            select(DeviceKey)
            .where(DeviceKey.org_unit_id.in_(units))
            .order_by(DeviceKey.org_unit_id, DeviceKey.name, DeviceKey.id)
        )
    )


def get_device_key(
    session: Session, actor: Actor | None, device_id: int, *, lock: bool = False
) -> DeviceKey:
    """One device; another library's does not exist for the actor."""
    row = session.get(DeviceKey, device_id, with_for_update=lock)
    if row is None:
        raise DeviceNotFound(device_id)
    if actor is not None:
        unit = libraries.get_unit(session, row.org_unit_id)
        if not actor.can(Permission.DEVICES_MANAGE, unit.path):
            raise DeviceNotFound(device_id)
    return row


def rotate_device_key(
    session: Session, actor: Actor, device_id: int, *, at: dt.datetime
) -> tuple[DeviceKey, str]:
    """A new key for the device, shown once; the old one is refused from this commit on
    (keys are looked up by digest on every request, nothing keeps them)."""
    row = get_device_key(session, actor, device_id, lock=True)
    if row.revoked_at is not None:
        raise DeviceRetired(row.id)
    key = new_token("bvd")
    old_hint = row.hint
    row.digest, row.hint = token_digest(key), key[:10]
    session.flush()
    log_action(
        session,
        actor,
        "device.rotate",
        entity="device",
        entity_id=row.id,
        org_unit_id=row.org_unit_id,
        at=at,
        details={"name": row.name, "kind": row.kind, "old_hint": old_hint},
    )
    return row, key


def retire_device_key(
    session: Session, actor: Actor, device_id: int, *, at: dt.datetime
) -> DeviceKey:
    """The device's key is refused from now on; its row, health, reads and alarms stay."""
    row = get_device_key(session, actor, device_id, lock=True)
    if row.revoked_at is not None:
        raise DeviceRetired(row.id)
    row.revoked_at = at
    session.flush()
    log_action(
        session,
        actor,
        "device.retire",
        entity="device",
        entity_id=row.id,
        org_unit_id=row.org_unit_id,
        at=at,
        details={"name": row.name, "kind": row.kind},
    )
    return row


def resolve_device(session: Session, key: str, *, at: dt.datetime) -> Actor:
    row = session.scalar(select(DeviceKey).where(DeviceKey.digest == token_digest(key)))
    if row is None or row.revoked_at is not None:
        raise TokenInvalid("unknown or revoked device key")
    row.last_seen_at = at
    return device_actor(row)


def device_actor(row: DeviceKey) -> Actor:
    return Actor(
        PrincipalKind.DEVICE,
        row.id,
        row.name,
        org_unit_id=row.org_unit_id,
        device_kind=DeviceKind(row.kind),
    )
