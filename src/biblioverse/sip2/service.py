"""Use cases of device accounts: SIP2 logins made in the staff console, what the SIP2 server
learns of each device (last seen, message and error counts) and its log of messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from biblioverse import accounts, devices, i18n, libraries
from biblioverse.access import DEVICE_CAPABILITIES, Actor, DeviceCapability, Permission
from biblioverse.audit import log_action
from biblioverse.errors import DuplicateValue, FieldError, PermissionDenied, ValidationFailed
from biblioverse.i18n import N_
from biblioverse.security import hash_secret, verify_secret
from biblioverse.sip2.errors import Sip2AccountNotFound
from biblioverse.sip2.models import CHARSETS, Sip2Account, Sip2LogLine

SIP2_KINDS = tuple(
    k.value for k, can in DEVICE_CAPABILITIES.items() if DeviceCapability.SIP2 in can
)
LOG_KEPT = 200  # lines per account
_LOGIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@")


@dataclass
class Sip2AccountInput:
    name: str
    login: str
    org_unit_id: int
    password: str | None = None  # required for a new account; None keeps the current one
    kind: str = "kiosk"
    location: str = ""
    charset: str = "utf-8"
    error_detection: bool = False
    locale: str = "en"
    enabled: bool = True


@dataclass(frozen=True)
class Sip2Line:
    """An account as the console lists it."""

    account: Sip2Account
    device: accounts.DeviceKey
    library: libraries.UnitName


def _check(data: Sip2AccountInput, *, new: bool) -> list[FieldError]:
    errors = []
    if not data.name.strip():
        errors.append(FieldError("name", "required", N_("A name for the device.")))
    if data.kind not in SIP2_KINDS:
        errors.append(FieldError("kind", "invalid", N_("Choose the kind of device.")))
    login = data.login.strip()
    if not login or len(login) > 60 or not set(login) <= _LOGIN_CHARS:
        errors.append(
            FieldError("login", "invalid", N_("1 to 60 letters, digits or - _ . @ (no spaces)."))
        )
    if (new or data.password) and len(data.password or "") < 8:
        errors.append(FieldError("password", "too_short", N_("At least 8 characters.")))
    if data.password and ("|" in data.password or not data.password.isprintable()):
        errors.append(FieldError("password", "invalid", N_("No | and no control characters.")))
    if data.charset not in CHARSETS:
        errors.append(FieldError("charset", "invalid", N_("Choose a character set.")))
    if data.locale not in i18n.LOCALES:
        errors.append(FieldError("locale", "invalid", N_("English or Simplified Chinese.")))
    if len(data.location) > 120:
        errors.append(FieldError("location", "too_long", N_("At most 120 characters.")))
    return errors


def _may_manage(actor: Actor | None, unit: libraries.OrgUnit) -> None:
    if actor is not None and not actor.can(Permission.DEVICES_MANAGE, unit.path):
        raise PermissionDenied("you may not manage devices of this library")


def _login_taken(session: Session, login: str, account_id: int | None) -> None:
    other = session.scalar(select(Sip2Account.id).where(Sip2Account.login == login))
    if other is not None and other != account_id:
        raise DuplicateValue("SIP2 account", "login", login)


def create_sip2_account(
    session: Session, actor: Actor | None, data: Sip2AccountInput, *, at: dt.datetime
) -> tuple[Sip2Account, str]:
    """A device of the registry and its SIP2 login. Returns the account and the device's key
    for the HTTP device API, shown once."""
    unit = libraries.get_unit(session, data.org_unit_id)
    _may_manage(actor, unit)
    errors = _check(data, new=True)
    if errors:
        raise ValidationFailed(errors)
    _login_taken(session, data.login.strip(), None)
    device, key = accounts.create_device_key(
        session, actor, name=data.name, kind=data.kind, org_unit_id=unit.id, at=at
    )
    assert data.password is not None
    account = Sip2Account(
        device_id=device.id,
        login=data.login.strip(),
        password_hash=hash_secret(data.password),
        location=data.location.strip(),
        charset=data.charset,
        error_detection=data.error_detection,
        locale=data.locale,
        enabled=data.enabled,
        created_at=at,
        updated_at=at,
        messages=0,
        errors=0,
    )
    session.add(account)
    session.flush()
    return account, key


def update_sip2_account(
    session: Session,
    actor: Actor | None,
    account_id: int,
    data: Sip2AccountInput,
    *,
    at: dt.datetime,
) -> Sip2Account:
    line = get_sip2_account(session, actor, account_id)
    new_unit = libraries.get_unit(session, data.org_unit_id)
    _may_manage(actor, new_unit)
    errors = _check(data, new=False)
    if errors:
        raise ValidationFailed(errors)
    _login_taken(session, data.login.strip(), account_id)
    account, device = line.account, line.device
    device.name, device.kind, device.org_unit_id = data.name.strip(), data.kind, new_unit.id
    account.login = data.login.strip()
    if data.password:
        account.password_hash = hash_secret(data.password)
    account.location = data.location.strip()
    account.charset, account.error_detection = data.charset, data.error_detection
    account.locale, account.enabled = data.locale, data.enabled
    account.updated_at = at
    session.flush()
    if actor is not None:
        log_action(
            session,
            actor,
            "device.sip2.change",
            entity="device",
            entity_id=device.id,
            org_unit_id=new_unit.id,
            at=at,
            details={"login": account.login, "password_changed": bool(data.password)},
        )
    return account


def _lines(session: Session, where: object = None) -> list[Sip2Line]:
    names = libraries.unit_names(session)
    q = select(Sip2Account, accounts.DeviceKey).join(
        accounts.DeviceKey, accounts.DeviceKey.id == Sip2Account.device_id
    )
    if where is not None:
        q = q.where(where)  # type: ignore[arg-type]
    return [
        Sip2Line(a, d, names[d.org_unit_id])
        for a, d in session.execute(q.order_by(accounts.DeviceKey.name, Sip2Account.id))
    ]


def sip2_accounts(session: Session, actor: Actor) -> list[Sip2Line]:
    """The accounts of the libraries the actor manages devices of."""
    scopes = actor.scopes_for(Permission.DEVICES_MANAGE)
    return [x for x in _lines(session) if any(x.library.path.startswith(s) for s in scopes)]


def get_sip2_account(session: Session, actor: Actor | None, account_id: int) -> Sip2Line:
    found = _lines(session, Sip2Account.id == account_id)
    if not found:
        raise Sip2AccountNotFound(account_id)
    line = found[0]
    if actor is not None and not actor.can(Permission.DEVICES_MANAGE, line.library.path):
        raise Sip2AccountNotFound(account_id)  # another library's device does not exist here
    return line


def device_details(session: Session, device_ids: Sequence[int]) -> dict[int, devices.Detail]:
    """What the SIP2 server counted of each device with a login, for the devices page."""
    out: dict[int, devices.Detail] = {}
    for start in range(0, len(device_ids), 900):
        part = device_ids[start : start + 900]
        for a in session.scalars(select(Sip2Account).where(Sip2Account.device_id.in_(part))):
            out[a.device_id] = devices.Detail(
                messages=a.messages,
                errors=a.errors,
                last_error=a.last_error,
                label=a.login,
                disabled=not a.enabled,
                location=a.location,
                href=f"/staff/devices/{a.id}",
            )
    return out


# --- what the SIP2 server needs -----------------------------------------------------------


@dataclass(frozen=True)
class Terminal:
    """A logged-in device as the SIP2 server keeps it for the connection."""

    account_id: int
    actor: Actor
    unit_id: int
    unit_code: str
    unit_name: str
    timezone: str
    location: str
    charset: str
    error_detection: bool
    locale: str


def _sip2_throttle_keys(login: str, address: str) -> list[str]:
    return [f"sip2:{login.lower()[:100]}@{address}", f"sip2-addr:{address}"]


@dataclass(frozen=True)
class SecretChecked:
    """A secret (a SIP2 login's password, a reader's PIN) checked before the transaction
    that uses it, against the hash read then: it holds only while that hash is unchanged."""

    stored: str | None
    matches: bool

    def holds_for(self, stored: str | None) -> bool:
        return stored == self.stored


def sip2_password_first(
    session: Session, login: str, password: str, *, address: str, at: dt.datetime
) -> SecretChecked:
    """Check a login's password on a snapshot, before the login's write transaction: argon2
    takes tens of milliseconds, and on SQLite that transaction holds the database's write
    lock from its first statement. A locked login raises Throttled here already, without
    the argon2 check (guesses stay cheap to refuse)."""
    accounts.check_throttle(session, _sip2_throttle_keys(login, address), at)
    stored = session.scalar(select(Sip2Account.password_hash).where(Sip2Account.login == login))
    return SecretChecked(stored, verify_secret(stored, password))


def sip2_login(
    session: Session,
    login: str,
    password: str,
    *,
    address: str,
    at: dt.datetime,
    policy: accounts.ThrottlePolicy,
    checked: SecretChecked | None = None,
) -> Terminal | None:
    """The account for a SIP2 login (93), or None: unknown login, wrong password or a
    disabled account look the same to the device.

    Attempts are counted like sign-ins, across connections, before the answer is given
    (:func:`accounts.count_attempt`): per login and address (the policy's account limit)
    and per address (its address limit). A locked key raises Throttled, even with the right
    password. The login is not locked for every address, so that guesses from one machine
    cannot shut a library's kiosks out. The caller commits, a refusal included.
    ``checked``: the password checked first (:func:`sip2_password_first`), used if the
    account's password has not changed since.
    """
    pair_key, address_key = _sip2_throttle_keys(login, address)
    accounts.count_attempt(session, person=pair_key, address=address_key, policy=policy, at=at)
    account = session.scalar(select(Sip2Account).where(Sip2Account.login == login))
    stored = account.password_hash if account is not None else None
    if checked is not None and checked.holds_for(stored):
        matches = checked.matches
    else:
        matches = verify_secret(stored, password)
    refused = not matches or account is None or not account.enabled
    device = (
        None if refused or account is None else session.get(accounts.DeviceKey, account.device_id)
    )
    if (
        account is None
        or device is None
        or device.revoked_at is not None
        or not accounts.device_actor(device).device_may(DeviceCapability.SIP2)
    ):
        return None
    accounts.attempt_succeeded(session, person=pair_key, address=address_key, policy=policy)
    unit = libraries.get_unit(session, device.org_unit_id)
    return Terminal(
        account_id=account.id,
        actor=accounts.device_actor(device),
        unit_id=unit.id,
        unit_code=unit.code,
        unit_name=unit.name_en,
        timezone=unit.timezone,
        location=account.location,
        charset=account.charset,
        error_detection=account.error_detection,
        locale=account.locale,
    )


@dataclass
class Traffic:
    """What one account did since the last flush."""

    messages: int = 0
    errors: int = 0
    last_error: str | None = None
    last_seen: dt.datetime | None = None
    address: str | None = None
    lines: list[tuple[dt.datetime, str, str]] = field(default_factory=list)


def record_traffic(session: Session, traffic: Mapping[int, Traffic]) -> None:
    """Add what the server counted and logged; keep the newest lines of each account.

    A handful of statements for all accounts together, whatever their number: the server
    calls this every second, and one update, insert and trim per account had grown to a
    sixth of its time with 32 kiosks busy."""
    if not traffic:
        return
    accounts_t = cast(Table, Sip2Account.__table__)
    keys_t = cast(Table, accounts.DeviceKey.__table__)
    log_t = cast(Table, Sip2LogLine.__table__)
    session.flush()
    session.execute(
        update(accounts_t)
        .where(accounts_t.c.id == bindparam("b_id"))
        .values(
            messages=accounts_t.c.messages + bindparam("b_messages"),
            errors=accounts_t.c.errors + bindparam("b_errors"),
            last_error=func.coalesce(bindparam("b_error"), accounts_t.c.last_error),
            last_address=func.coalesce(bindparam("b_address"), accounts_t.c.last_address),
        ),
        [
            {
                "b_id": account_id,
                "b_messages": t.messages,
                "b_errors": t.errors,
                "b_error": t.last_error[:200] if t.last_error is not None else None,
                "b_address": t.address[:64] if t.address is not None else None,
            }
            for account_id, t in traffic.items()
        ],
    )
    seen = [
        {"b_id": account_id, "b_seen": t.last_seen}
        for account_id, t in traffic.items()
        if t.last_seen is not None
    ]
    if seen:
        device_of = (
            select(accounts_t.c.device_id)
            .where(accounts_t.c.id == bindparam("b_id"))
            .scalar_subquery()
        )
        session.execute(
            update(keys_t).where(keys_t.c.id == device_of).values(last_seen_at=bindparam("b_seen")),
            seen,
        )
    lines = [
        {"account_id": account_id, "at": at, "direction": d, "text": text[:600]}
        for account_id, t in traffic.items()
        for at, d, text in t.lines[-LOG_KEPT:]
    ]
    if lines:
        session.execute(insert(log_t), lines)
        ranked = (
            select(
                log_t.c.id,
                func.row_number()
                .over(partition_by=log_t.c.account_id, order_by=log_t.c.id.desc())
                .label("n"),
            )
            .where(log_t.c.account_id.in_({line["account_id"] for line in lines}))
            .subquery()
        )
        session.execute(
            delete(log_t).where(log_t.c.id.in_(select(ranked.c.id).where(ranked.c.n > LOG_KEPT)))
        )


def log_of(
    session: Session, actor: Actor, account_id: int, *, limit: int = 100
) -> list[Sip2LogLine]:
    """The newest lines first (already masked when written)."""
    get_sip2_account(session, actor, account_id)
    return list(
        session.scalars(
            select(Sip2LogLine)
            .where(Sip2LogLine.account_id == account_id)
            .order_by(Sip2LogLine.id.desc())
            .limit(limit)
        )
    )
