"""The library side of SIP2 (the "ACS"): one function per request, each calling the same
circulation services as the desk and the API, in one transaction per message.

A refusal is answered with the negative form of the message's response and a screen message
(AF) in the reader's language, so that the machine can show why; the reasons come from
the circulation rules, never from here.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from biblioverse import accounts, catalog, circulation, i18n, libraries, readers
from biblioverse.access import PrincipalKind
from biblioverse.circulation import words
from biblioverse.errors import DomainError, NotFound, Throttled
from biblioverse.i18n import N_
from biblioverse.security import verify_secret
from biblioverse.sip2.models import Sip2ItemProperties
from biblioverse.sip2.protocol import Field, Request, Response, format_date, parse_date, yn
from biblioverse.sip2.service import SecretChecked, Terminal

log = logging.getLogger(__name__)

# SIP2 language codes the machines send, and the interface language they ask for.
LANGUAGES = {"001": "en", "019": "zh_Hans"}
LANGUAGE_CODES = {"en": "001", "zh_Hans": "019"}

# Circulation status (item information) of each copy status.
CIRCULATION_STATUS = {
    catalog.ItemStatus.AVAILABLE.value: "03",
    catalog.ItemStatus.ON_LOAN.value: "04",
    catalog.ItemStatus.IN_PROCESSING.value: "06",
    catalog.ItemStatus.ON_HOLD_SHELF.value: "08",
    catalog.ItemStatus.IN_TRANSIT.value: "10",
    catalog.ItemStatus.LOST.value: "12",
    catalog.ItemStatus.MISSING.value: "13",
}
MEDIA_TYPE = {"audiovisual": "006", "periodical": "002"}  # the rest are books: 001

# What a return sorter is told (CL sort bin) and the alert type (CV) at check-in.
SORT_BIN = {"shelve": "SHELVE", "hold_shelf": "HOLD", "transit": "TRANSIT", "check": "CHECK"}
ALERT_HOLD_HERE, ALERT_HOLD_ELSEWHERE, ALERT_SEND_HOME, ALERT_OTHER = "01", "02", "04", "99"

NOT_LOGGED_IN = N_("This machine is not logged in.")
UNKNOWN_READER = N_("No reader has this card number.")
WRONG_PIN = N_("The PIN does not match this card.")
UNKNOWN_COPY = N_("No copy has this barcode.")
NOT_YOURS = N_("This copy is not on loan on this card.")
ASK_DESK = N_("This cannot be done here. Please ask at the desk.")
CURRENCY_MISMATCH = N_("This machine pays in another currency.")
KIOSK = {
    **words.READER,
    circulation.errors.ChannelNotAllowed.code: N_("This copy is lent at the desk only."),
    catalog.ItemNotFound.code: UNKNOWN_COPY,
}


@dataclass
class Link:
    """One connection's state: the logged-in device and readers whose PIN it checked (kept
    as keyed digests, so that a kiosk sending the PIN with every message costs one argon2
    check per reader and session, not one per message). Each is kept with the stored PIN
    (its hash) it matched: once the reader has a new PIN, the old one is checked again and
    refused."""

    terminal: Terminal | None = None
    pins: dict[str, tuple[str | None, bytes]] = field(default_factory=dict)
    last: bytes | None = None  # the last response, for a resend (97)
    language: str | None = None  # of the reader at the machine now
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def pin_digest(self, card: str, pin: str) -> bytes:
        return hmac.new(self.key, f"{card}\x00{pin}".encode(), "sha256").digest()

    def pin_seen(self, card: str, pin: str) -> bool:
        """Whether this PIN was found right for this card earlier on this connection, against
        the reader's PIN as it was then (the server's guess, before it reads the reader,
        that there is nothing to check)."""
        seen = self.pins.get(card)
        return seen is not None and hmac.compare_digest(seen[1], self.pin_digest(card, pin))

    def pin_known(self, card: str, pin: str, stored: str | None) -> bool:
        """Whether this PIN was found right for this card on this connection against
        ``stored``, the reader's PIN as it is now."""
        return self.pin_seen(card, pin) and self.pins[card][0] == stored

    def check_pin(
        self, reader: readers.Reader, card: str, pin: str, checked: SecretChecked | None = None
    ) -> bool:
        """Check a reader's PIN (argon2, tens of milliseconds, unless known already or
        ``checked`` before the transaction against the same hash) and remember it when it
        is right. A PIN remembered against another hash than the reader's is forgotten."""
        stored = reader.pin_hash
        if self.pin_known(card, pin, stored):
            return True
        if card in self.pins and self.pins[card][0] != stored:
            del self.pins[card]  # the reader has a new PIN since
        if checked is not None and checked.holds_for(stored):
            ok = checked.matches
        else:
            ok = verify_secret(stored, pin)
        if ok:
            self.pins[card] = (stored, self.pin_digest(card, pin))
        return ok


def pin_first(reader: readers.Reader, pin: str) -> SecretChecked:
    """A reader's PIN checked before the message's transaction (argon2). It is remembered
    for the connection by the transaction (:meth:`Link.check_pin`), if the reader's PIN is
    still the one checked."""
    return SecretChecked(reader.pin_hash, verify_secret(reader.pin_hash, pin))


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class Context:
    """One message being answered: the transaction, the device, the clock and the reader's
    language."""

    def __init__(
        self,
        session: Session,
        link: Link,
        request: Request,
        now: dt.datetime,
        currency: str,
        *,
        throttle: accounts.ThrottlePolicy,
        pin_checked: SecretChecked | None = None,
    ):
        """``throttle``: the sign-ins' policy, which counts wrong PINs too. ``pin_checked``:
        the request's PIN (AD) for its card (AA), checked before the transaction
        (:meth:`Sip2Server._check_pin`); None when it was not."""
        assert link.terminal is not None
        self.session, self.link, self.request, self.now = session, link, request, now
        self.throttle, self.pin_checked = throttle, pin_checked
        self.terminal: Terminal = link.terminal
        self.tz = _zone(self.terminal.timezone)
        self.currency = currency
        # The language comes with patron status and information (23, 63) and holds for the
        # reader's session at the machine.
        asked = LANGUAGES.get(request.fixed.get("language", ""))
        if asked:
            link.language = asked
        locale = asked or link.language or self.terminal.locale
        if locale == "zh_Hans" and self.terminal.charset != "utf-8":
            locale = "en"  # Chinese cannot be written in latin-1 or cp850
        self.locale = locale
        self.language = LANGUAGE_CODES[locale]
        self.titles: dict[int, str | None] = {}

    @property
    def date(self) -> str:
        return format_date(self.now, self.tz)

    def say(self, message: str) -> str:
        return i18n.translations(self.locale).gettext(message)

    def refusal(self, error: DomainError) -> str:
        return self.say(KIOSK.get(error.code, ASK_DESK))

    def when(self, value: dt.datetime | None) -> str | None:
        return format_date(value, self.tz) if value is not None else None

    # --- readers ---

    def reader(self) -> Patron:
        card = self.request.get(Field.PATRON_IDENTIFIER)
        reader = readers.by_card(self.session, card) if card else None
        pin = self.request.fields.get(Field.PATRON_PASSWORD, [""])[0]
        pin_ok: bool | None = None
        if reader is not None and pin:
            pin_ok = self._pin_right(reader, card, pin)
        elif pin:
            pin_ok = False
        return Patron(card, reader, pin_ok)

    def _pin_right(self, reader: readers.Reader, card: str, pin: str) -> bool:
        """A PIN is a sign-in of its reader: counted with their passwords on the web
        (:func:`accounts.count_attempt`, no address: the kiosk is the library's) before it
        is judged. Once the reader is locked out the PIN is wrong, the right one too,
        without a look at it. A PIN this connection knows already is not counted again."""
        person = accounts.person_key(PrincipalKind.READER, reader.id)
        try:
            if self.link.pin_known(card, pin, reader.pin_hash):
                accounts.check_throttle(self.session, [person], self.now)
                return True
            accounts.count_attempt(
                self.session, person=person, address=None, policy=self.throttle, at=self.now
            )
        except Throttled:
            return False
        # checked by the server before this transaction began, or now
        right = self.link.check_pin(reader, card, pin, self.pin_checked)
        if right:
            accounts.attempt_succeeded(
                self.session, person=person, address=None, policy=self.throttle
            )
        return right

    def copy(self, identifier: str, *, lock: bool = False) -> catalog.Item | None:
        """A copy by the identifier the machine read: a barcode, or an RFID tag's id (its
        title comes with it, for the answer). ``lock``: its row locked for the rest of the
        transaction, for a loan or a return (the service then does not read it again)."""
        if not identifier:
            return None
        for q in _LOCKED_COPY_BY if lock else _COPY_BY:
            row = self.session.execute(q, {"code": identifier}).first()
            if row is not None:
                item, self.titles[item.record_id] = row
                return item
        return None

    def title(self, item: catalog.Item | None) -> str:
        if item is None:
            return ""
        if item.record_id not in self.titles:
            self.titles[item.record_id] = self.session.scalar(
                select(catalog.Record.title).where(catalog.Record.id == item.record_id)
            )
        return self.titles[item.record_id] or ""


# Built once: every loan and return at a machine looks its copy up.
_COPY_BY = tuple(
    select(catalog.Item, catalog.Record.title)
    .join(catalog.Record, catalog.Record.id == catalog.Item.record_id)
    .where(column == bindparam("code"))
    for column in (catalog.Item.barcode, catalog.Item.rfid_tag)
)
# populate_existing as in catalog.item_for_update: what the lock holder committed is seen.
_LOCKED_COPY_BY = tuple(
    q.with_for_update(of=catalog.Item).execution_options(populate_existing=True) for q in _COPY_BY
)


@dataclass
class Patron:
    card: str
    reader: readers.Reader | None
    pin_ok: bool | None  # None when no PIN was sent

    @property
    def valid(self) -> bool:
        return self.reader is not None

    @property
    def usable(self) -> bool:
        return self.reader is not None and self.pin_ok is not False


Handler = Callable[[Context], Response]
HANDLERS: dict[str, Handler] = {}


def handles(command: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[command] = fn
        return fn

    return register


# --- patron status, information, blocks ---------------------------------------------------


def _policy(ctx: Context, reader: readers.Reader) -> circulation.Policy:
    """The rule for books at the reader's home library: what a machine says about the card."""
    m = circulation.Matrix(ctx.session)
    return m.rule(reader.home_library_id, reader.category, catalog.ItemType.BOOK.value).rule.policy


def _status_flags(ctx: Context, patron: Patron) -> tuple[str, circulation.Standing | None]:
    """The 14 patron status flags: Y where a privilege is denied, blank otherwise."""
    if patron.reader is None:
        return "Y" * 4 + " " * 10, None
    s = circulation.standing(ctx.session, patron.reader, _policy(ctx, patron.reader), ctx.now)
    errs = circulation.errors
    card = {errs.ReaderBlocked.code, errs.CardExpired.code, errs.CardNotActive.code}
    fees_over = errs.FeeLimitReached.code in s.refusals
    card_bad = bool(card & set(s.refusals)) or fees_over
    flags = [" "] * 14
    if card_bad or s.refusals:
        flags[0] = "Y"  # charge privileges denied
        flags[2] = "Y"  # recall privileges denied (recalls are not used)
    if card_bad:
        flags[1] = flags[3] = "Y"  # renewal and hold privileges denied
    if errs.LoanLimitReached.code in s.refusals:
        flags[5] = "Y"
    if fees_over:
        flags[10] = flags[11] = "Y"
    return "".join(flags), s


def _patron_fields(
    ctx: Context, patron: Patron, s: circulation.Standing | None
) -> list[tuple[str, object]]:
    r = patron.reader
    fields: list[tuple[str, object]] = [
        (Field.INSTITUTION_ID, ctx.terminal.unit_code),
        (Field.PATRON_IDENTIFIER, patron.card),
        (Field.PERSONAL_NAME, r.name if r is not None and patron.usable else ""),
        (Field.VALID_PATRON, yn(patron.valid)),
    ]
    if patron.pin_ok is not None:
        fields.append((Field.VALID_PATRON_PASSWORD, yn(patron.pin_ok)))
    if s is not None and patron.usable:
        fields += [(Field.CURRENCY_TYPE, ctx.currency), (Field.FEE_AMOUNT, f"{s.owed:.2f}")]
    return fields


def _patron_message(ctx: Context, patron: Patron) -> str | None:
    if patron.reader is None:
        return ctx.say(UNKNOWN_READER)
    if patron.pin_ok is False:
        return ctx.say(WRONG_PIN)
    return None


def _patron_status(ctx: Context) -> Response:
    patron = ctx.reader()
    flags, s = _status_flags(ctx, patron)
    fields = _patron_fields(ctx, patron, s)
    message = _patron_message(ctx, patron)
    if message is None and s is not None and s.refusals:
        message = ctx.say(KIOSK.get(s.refusals[0], ASK_DESK))
    fields.append((Field.SCREEN_MESSAGE, message))
    return Response("24", flags + ctx.language + ctx.date, fields)


handles("23")(_patron_status)


def _item_range(ctx: Context) -> tuple[int, int]:
    def number(code: str, default: int) -> int:
        value = ctx.request.get(code)
        return int(value) if value.isdigit() and int(value) > 0 else default

    start = number(Field.START_ITEM, 1)
    return start, max(start, number(Field.END_ITEM, start + 49))


@handles("63")
def patron_information(ctx: Context) -> Response:
    patron = ctx.reader()
    flags, s = _status_flags(ctx, patron)
    fields = _patron_fields(ctx, patron, s)
    counts = [0] * 6
    lists: list[tuple[str, list[str]]] = []
    r = patron.reader
    if r is not None and patron.usable and s is not None:
        loans = circulation.open_loans(ctx.session, r.id)
        holds = circulation.holds.holds_of(ctx.session, r.id)
        fees = circulation.fees.fees_of(ctx.session, r.id)
        ready = [h for h in holds if h.hold.status == circulation.HoldState.READY.value]
        waiting = [h for h in holds if h.hold.status != circulation.HoldState.READY.value]
        overdue = [x for x in loans if x.loan.due_at < ctx.now]
        counts = [len(ready), len(overdue), len(loans), len(fees), 0, len(waiting)]
        fields += [
            (Field.HOLD_ITEMS_LIMIT, f"{s.hold_limit:04d}"[-4:]),
            (Field.CHARGED_ITEMS_LIMIT, f"{s.loan_limit:04d}"[-4:]),
            (Field.FEE_LIMIT, f"{s.fee_limit:.2f}"),
        ]
        summary = ctx.request.fixed.get("summary", "")
        wanted = summary.find("Y") if "Y" in summary.upper() else -1
        first, last = _item_range(ctx)
        pick = slice(first - 1, last)
        if wanted == 0:
            lists.append((Field.HOLD_ITEMS, [h.title for h in ready][pick]))
        elif wanted == 1:
            lists.append((Field.OVERDUE_ITEMS, [x.barcode for x in overdue][pick]))
        elif wanted == 2:
            lists.append((Field.CHARGED_ITEMS, [x.barcode for x in loans][pick]))
        elif wanted == 3:
            lists.append(
                (Field.FINE_ITEMS, [f"{f.id} {f.balance:.2f} {f.kind}" for f in fees][pick])
            )
        elif wanted == 5:
            lists.append((Field.UNAVAILABLE_HOLD_ITEMS, [h.title for h in waiting][pick]))
        if patron.pin_ok:  # contact details only to the reader who gave their PIN
            fields += [
                (Field.EMAIL_ADDRESS, r.email or None),
                (Field.HOME_PHONE_NUMBER, r.phone or None),
            ]
    fixed = flags + ctx.language + ctx.date + "".join(f"{min(c, 9999):04d}" for c in counts)
    fields += lists
    fields.append((Field.SCREEN_MESSAGE, _patron_message(ctx, patron)))
    return Response("64", fixed, fields)


@handles("01")
def block_patron(ctx: Context) -> Response:
    patron = ctx.reader()
    if patron.reader is not None:
        reason = ctx.request.get(Field.BLOCKED_CARD_MESSAGE) or "card retained"
        readers.block_at_device(
            ctx.session, ctx.terminal.actor, patron.reader.id, reason, at=ctx.now
        )
        ctx.session.flush()
    return _patron_status(ctx)  # the standard answers a block with a patron status


@handles("25")
def patron_enable(ctx: Context) -> Response:
    patron = ctx.reader()
    if patron.usable and patron.reader is not None:
        readers.enable_at_device(ctx.session, ctx.terminal.actor, patron.reader.id, at=ctx.now)
        ctx.session.flush()
    flags, s = _status_flags(ctx, patron)
    fields = [
        f
        for f in _patron_fields(ctx, patron, s)
        if f[0] not in (Field.CURRENCY_TYPE, Field.FEE_AMOUNT)
    ]
    fields.append((Field.SCREEN_MESSAGE, _patron_message(ctx, patron)))
    return Response("26", flags + ctx.language + ctx.date, fields)


@handles("35")
def end_patron_session(ctx: Context) -> Response:
    card = ctx.request.get(Field.PATRON_IDENTIFIER)
    ctx.link.pins.pop(card, None)  # the next reader at this machine starts afresh
    ctx.link.language = None
    return Response(
        "36",
        "Y" + ctx.date,
        [(Field.INSTITUTION_ID, ctx.terminal.unit_code), (Field.PATRON_IDENTIFIER, card)],
    )


# --- loans ----------------------------------------------------------------------------------


def _media(item: catalog.Item | None) -> str:
    return MEDIA_TYPE.get(item.item_type, "001") if item is not None else "000"


def _checkout_response(
    ctx: Context,
    ok: bool,
    renewal: bool,
    item: catalog.Item | None,
    loan: circulation.Loan | None,
    message: str | None,
    *,
    command: str = "12",
) -> Response:
    magnetic = "U" if item is None else yn(item.item_type == "audiovisual")
    # RFID: the security bit is turned off when the copy leaves on a loan, and only then.
    desensitize = yn(ok) if command == "12" else "U"
    fields: list[tuple[str, object]] = [
        (Field.INSTITUTION_ID, ctx.terminal.unit_code),
        (Field.PATRON_IDENTIFIER, ctx.request.get(Field.PATRON_IDENTIFIER)),
        (Field.ITEM_IDENTIFIER, ctx.request.get(Field.ITEM_IDENTIFIER)),
        (Field.TITLE_IDENTIFIER, ctx.title(item)),
        (Field.DUE_DATE, ctx.when(loan.due_at) if ok and loan is not None else ""),
    ]
    if item is not None:
        fields.append((Field.MEDIA_TYPE, _media(item)))
    fields.append((Field.SCREEN_MESSAGE, message))
    fixed = ("1" if ok else "0") + yn(renewal) + magnetic + desensitize + ctx.date
    return Response(command, fixed, fields)


def _own_loan(ctx: Context, item: catalog.Item, reader_id: int) -> circulation.Loan | None:
    return ctx.session.scalar(
        select(circulation.Loan).where(
            circulation.Loan.item_id == item.id,
            circulation.Loan.reader_id == reader_id,
            circulation.Loan.returned_at.is_(None),
        )
    )


@handles("11")
def checkout(ctx: Context) -> Response:
    patron = ctx.reader()
    item = ctx.copy(ctx.request.get(Field.ITEM_IDENTIFIER), lock=True)
    message = _patron_message(ctx, patron)
    if message is not None or patron.reader is None:
        return _checkout_response(ctx, False, False, item, None, message)
    if item is None:
        return _checkout_response(ctx, False, False, None, None, ctx.say(UNKNOWN_COPY))
    reader = patron.reader
    reader_id = reader.id
    # No savepoint: until the loan is made this transaction has only read, so a refusal
    # rolls all of it back (two round trips fewer a loan than a savepoint and its release).
    try:
        loan = circulation.checkout(
            ctx.session,
            ctx.terminal.actor,
            reader_id=reader_id,
            barcode=item.barcode,
            at_unit_id=ctx.terminal.unit_id,
            channel="kiosk",
            at=ctx.now,
            locked=item,
        )
        return _checkout_response(ctx, True, False, item, loan, None)
    except circulation.errors.ItemOnLoan as refusal:
        ctx.session.rollback()
        own = _own_loan(ctx, item, reader_id)
        if own is None:
            return _checkout_response(ctx, False, False, item, None, ctx.refusal(refusal))
        if not ctx.request.flag("sc_renewal_policy"):
            return _checkout_response(ctx, False, False, item, own, ctx.say(NOT_RENEWED))
    except DomainError as refusal:
        ctx.session.rollback()
        return _checkout_response(ctx, False, False, item, None, ctx.refusal(refusal))
    # Lent already to this reader, and the machine lets the library renew it instead.
    try:
        with ctx.session.begin_nested():
            loan = circulation.renew(ctx.session, ctx.terminal.actor, own.id, at=ctx.now)
        return _checkout_response(ctx, True, True, item, loan, ctx.say(RENEWED))
    except DomainError as refusal:
        return _checkout_response(ctx, False, False, item, own, ctx.refusal(refusal))


NOT_RENEWED = N_("You already have this copy on loan.")
RENEWED = N_("You already had this copy; the loan is renewed.")


@handles("29")
def renew(ctx: Context) -> Response:
    patron = ctx.reader()
    item = ctx.copy(ctx.request.get(Field.ITEM_IDENTIFIER))

    def answer(ok: bool, loan: circulation.Loan | None, message: str | None) -> Response:
        return _checkout_response(ctx, ok, ok, item, loan, message, command="30")

    message = _patron_message(ctx, patron)
    if message is not None or patron.reader is None:
        return answer(False, None, message)
    if item is None:
        return answer(False, None, ctx.say(UNKNOWN_COPY))
    loan = _own_loan(ctx, item, patron.reader.id)
    if loan is None:
        return answer(False, None, ctx.say(NOT_YOURS))
    try:
        with ctx.session.begin_nested():
            loan = circulation.renew(ctx.session, ctx.terminal.actor, loan.id, at=ctx.now)
    except DomainError as refusal:
        return answer(False, loan, ctx.refusal(refusal))
    return answer(True, loan, None)


@handles("65")
def renew_all(ctx: Context) -> Response:
    patron = ctx.reader()
    renewed: list[str] = []
    unrenewed: list[str] = []
    message = _patron_message(ctx, patron)
    if message is None and patron.reader is not None:
        for line in circulation.open_loans(ctx.session, patron.reader.id):
            try:
                with ctx.session.begin_nested():
                    circulation.renew(ctx.session, ctx.terminal.actor, line.loan.id, at=ctx.now)
                renewed.append(line.barcode)
            except DomainError:
                unrenewed.append(line.barcode)
    ok = message is None
    fixed = ("1" if ok else "0") + f"{len(renewed):04d}" + f"{len(unrenewed):04d}" + ctx.date
    fields: list[tuple[str, object]] = [
        (Field.INSTITUTION_ID, ctx.terminal.unit_code),
        (Field.RENEWED_ITEMS, renewed),
        (Field.UNRENEWED_ITEMS, unrenewed),
        (Field.SCREEN_MESSAGE, message),
    ]
    return Response("66", fixed, fields)


def _return_date(ctx: Context) -> dt.datetime | None:
    """The return date the machine sent (it stored the return while offline); the check-in
    bounds it by the loan and the clock (:func:`circulation.rules.returned_at`)."""
    given = parse_date(ctx.request.fixed.get("return_date", ""), ctx.tz)
    return given.astimezone(dt.UTC) if given is not None else None


@handles("09")
def checkin(ctx: Context) -> Response:
    item = ctx.copy(ctx.request.get(Field.ITEM_IDENTIFIER), lock=True)
    code = ctx.terminal.unit_code
    if item is None:
        # Not a copy of this consortium: the sorter's exception bin, and no security change.
        fixed = "0NUY" + ctx.date
        return Response(
            "10",
            fixed,
            [
                (Field.INSTITUTION_ID, code),
                (Field.ITEM_IDENTIFIER, ctx.request.get(Field.ITEM_IDENTIFIER)),
                (Field.PERMANENT_LOCATION, ""),
                (Field.SORT_BIN, SORT_BIN["check"]),
                (Field.ALERT_TYPE, ALERT_OTHER),
                (Field.SCREEN_MESSAGE, ctx.say(UNKNOWN_COPY)),
            ],
        )
    owner = libraries.unit_names(ctx.session)
    magnetic = yn(item.item_type == "audiovisual")
    fields: list[tuple[str, object]] = [
        (Field.INSTITUTION_ID, code),
        (Field.ITEM_IDENTIFIER, ctx.request.get(Field.ITEM_IDENTIFIER)),
    ]
    # No savepoint, as for a loan: a refusal rolls back a transaction that has only read.
    try:
        done = circulation.checkin(
            ctx.session,
            ctx.terminal.actor,
            barcode=item.barcode,
            at_unit_id=ctx.terminal.unit_id,
            at=ctx.now,
            returned=_return_date(ctx),
            locked=item,
        )
    except DomainError as refusal:
        ctx.session.rollback()
        fields += [
            (Field.PERMANENT_LOCATION, owner[item.org_unit_id].code),
            (Field.TITLE_IDENTIFIER, ctx.title(item)),
            (Field.SORT_BIN, SORT_BIN["check"]),
            (Field.MEDIA_TYPE, _media(item)),
            (Field.ALERT_TYPE, ALERT_OTHER),
            (Field.SCREEN_MESSAGE, ctx.refusal(refusal)),
        ]
        return Response("10", "0Y" + magnetic + "Y" + ctx.date, fields)
    action = done.routing.action.value
    to = owner[done.routing.unit_id]
    alert = action != "shelve"
    alert_type = None
    message = None
    if action == "hold_shelf":
        alert_type, message = ALERT_HOLD_HERE, ctx.say(N_("Put this copy on the hold shelf."))
    elif action == "transit" and done.routing.hold is not None:
        alert_type = ALERT_HOLD_ELSEWHERE
        message = ctx.say(N_("Send this copy to {library} for a hold.")).format(library=to.code)
    elif action == "transit":
        alert_type = ALERT_SEND_HOME
        message = ctx.say(N_("Send this copy home to {library}.")).format(library=to.code)
    fields += [
        (Field.PERMANENT_LOCATION, owner[item.org_unit_id].code),
        (Field.TITLE_IDENTIFIER, ctx.title(item)),
        (Field.SORT_BIN, SORT_BIN[action]),
        (Field.MEDIA_TYPE, _media(item)),
        (Field.ALERT_TYPE, alert_type),
        (Field.DESTINATION_LOCATION, to.code if action == "transit" else None),
        (Field.SCREEN_MESSAGE, message),
    ]
    # RFID: the security bit goes back on for a copy that stays in the library's care.
    return Response("10", "1Y" + magnetic + yn(alert) + ctx.date, fields)


# --- items ----------------------------------------------------------------------------------


@handles("17")
def item_information(ctx: Context) -> Response:
    item = ctx.copy(ctx.request.get(Field.ITEM_IDENTIFIER))
    if item is None:
        return Response(
            "18",
            "01" + "00" + "01" + ctx.date,
            [
                (Field.ITEM_IDENTIFIER, ctx.request.get(Field.ITEM_IDENTIFIER)),
                (Field.TITLE_IDENTIFIER, ""),
                (Field.SCREEN_MESSAGE, ctx.say(UNKNOWN_COPY)),
            ],
        )
    names = libraries.unit_names(ctx.session)
    loan = ctx.session.scalar(
        select(circulation.Loan).where(
            circulation.Loan.item_id == item.id, circulation.Loan.returned_at.is_(None)
        )
    )
    queue = ctx.session.scalar(circulation.holds.queue_length_query(item.record_id)) or 0
    shelf_hold = ctx.session.scalar(
        select(circulation.Hold).where(
            circulation.Hold.trapped_item_id == item.id,
            circulation.Hold.status == circulation.HoldState.READY.value,
        )
    )
    properties = ctx.session.get(Sip2ItemProperties, item.id)
    status = CIRCULATION_STATUS.get(item.status, "01")
    where = item.at_unit_id or item.org_unit_id
    fields: list[tuple[str, object]] = [
        (Field.HOLD_QUEUE_LENGTH, f"{queue:04d}"[-4:]),
        (Field.DUE_DATE, ctx.when(loan.due_at) if loan is not None else None),
        (
            Field.HOLD_PICKUP_DATE,
            ctx.when(shelf_hold.expires_at) if shelf_hold is not None else None,
        ),
        (Field.ITEM_IDENTIFIER, ctx.request.get(Field.ITEM_IDENTIFIER)),
        (Field.TITLE_IDENTIFIER, ctx.title(item)),
        (Field.OWNER, names[item.org_unit_id].code),
        (Field.MEDIA_TYPE, _media(item)),
        (Field.PERMANENT_LOCATION, names[item.org_unit_id].code),
        (Field.CURRENT_LOCATION, names[where].code),
        (Field.ITEM_PROPERTIES, properties.properties if properties is not None else None),
    ]
    # Security marker 00 "other": the copies carry RFID tags.
    return Response("18", status + "00" + "01" + ctx.date, fields)


@handles("19")
def item_status_update(ctx: Context) -> Response:
    item = ctx.copy(ctx.request.get(Field.ITEM_IDENTIFIER))
    if item is None:
        return Response(
            "20",
            "0" + ctx.date,
            [
                (Field.ITEM_IDENTIFIER, ctx.request.get(Field.ITEM_IDENTIFIER)),
                (Field.SCREEN_MESSAGE, ctx.say(UNKNOWN_COPY)),
            ],
        )
    if not ctx.terminal.actor.org_unit_id or not _same_library(ctx, item):
        return Response(
            "20",
            "0" + ctx.date,
            [
                (Field.ITEM_IDENTIFIER, ctx.request.get(Field.ITEM_IDENTIFIER)),
                (Field.SCREEN_MESSAGE, ctx.say(ASK_DESK)),
            ],
        )
    row = ctx.session.get(Sip2ItemProperties, item.id)
    text = ctx.request.get(Field.ITEM_PROPERTIES)
    if row is None:
        row = Sip2ItemProperties(item_id=item.id, properties="", updated_at=ctx.now)
        ctx.session.add(row)
    row.properties, row.account_id, row.updated_at = text, ctx.terminal.account_id, ctx.now
    ctx.session.flush()
    return Response(
        "20",
        "1" + ctx.date,
        [
            (Field.ITEM_IDENTIFIER, ctx.request.get(Field.ITEM_IDENTIFIER)),
            (Field.TITLE_IDENTIFIER, ctx.title(item)),
            (Field.ITEM_PROPERTIES, text),
        ],
    )


def _same_library(ctx: Context, item: catalog.Item) -> bool:
    """A machine writes down properties of its own library's copies only."""
    names = libraries.unit_names(ctx.session)
    return names[item.org_unit_id].path.startswith(names[ctx.terminal.unit_id].path)


# --- holds ----------------------------------------------------------------------------------


def _hold_response(
    ctx: Context,
    ok: bool,
    hold: circulation.Hold | None,
    item: catalog.Item | None,
    msg: str | None,
) -> Response:
    names = libraries.unit_names(ctx.session)
    available = hold is not None and hold.status == circulation.HoldState.READY.value
    fields: list[tuple[str, object]] = []
    if hold is not None and ok:
        position = circulation.holds.queue_position(ctx.session, hold)
        fields += [
            (Field.EXPIRATION_DATE, ctx.when(hold.expires_at)),
            (Field.QUEUE_POSITION, str(position) if position is not None else None),
            (Field.PICKUP_LOCATION, names[hold.pickup_unit_id].code),
        ]
    fields += [
        (Field.INSTITUTION_ID, ctx.terminal.unit_code),
        (Field.PATRON_IDENTIFIER, ctx.request.get(Field.PATRON_IDENTIFIER)),
        (Field.ITEM_IDENTIFIER, ctx.request.get(Field.ITEM_IDENTIFIER) or None),
        (
            Field.TITLE_IDENTIFIER,
            ctx.title(item)
            if item is not None
            else ctx.request.get(Field.TITLE_IDENTIFIER) or None,
        ),
        (Field.SCREEN_MESSAGE, msg),
    ]
    return Response("16", ("1" if ok else "0") + yn(available) + ctx.date, fields)


def _record_of(ctx: Context, item: catalog.Item | None) -> int | None:
    if item is not None:
        return item.record_id
    title = ctx.request.get(Field.TITLE_IDENTIFIER)  # a record number or an ISBN
    if title.isdigit() and ctx.session.get(catalog.Record, int(title)) is not None:
        return int(title)
    isbn = catalog.normalise_isbn(title)
    if isbn:
        return ctx.session.scalar(
            select(catalog.RecordKey.record_id)
            .where(catalog.RecordKey.kind == "isbn", catalog.RecordKey.value == isbn)
            .limit(1)
        )
    return None


@handles("15")
def hold(ctx: Context) -> Response:
    patron = ctx.reader()
    item = ctx.copy(ctx.request.get(Field.ITEM_IDENTIFIER))
    message = _patron_message(ctx, patron)
    if message is not None or patron.reader is None:
        return _hold_response(ctx, False, None, item, message)
    record_id = _record_of(ctx, item)
    if record_id is None:
        return _hold_response(ctx, False, None, item, ctx.say(UNKNOWN_COPY))
    pickup_code = ctx.request.get(Field.PICKUP_LOCATION)
    try:
        pickup = (
            libraries.get_unit_by_code(ctx.session, pickup_code)
            if pickup_code
            else libraries.get_unit(ctx.session, ctx.terminal.unit_id)
        )
    except NotFound:
        return _hold_response(ctx, False, None, item, ctx.say(N_("No library has this code.")))
    mode = ctx.request.fixed.get("hold_mode", "+").strip() or "+"
    actor = ctx.terminal.actor
    try:
        with ctx.session.begin_nested():
            if mode == "+":
                specific = item is not None and ctx.request.get(Field.HOLD_TYPE) == "3"
                placed = circulation.holds.place(
                    ctx.session,
                    actor,
                    reader_id=patron.reader.id,
                    record_id=record_id,
                    pickup_unit_id=pickup.id,
                    item_id=item.id if specific and item is not None else None,
                    at=ctx.now,
                )
                return _hold_response(ctx, True, placed, item, None)
            mine = circulation.holds.active_hold(ctx.session, patron.reader.id, record_id)
            if mine is None:
                return _hold_response(
                    ctx, False, None, item, ctx.say(words.READER["hold_not_found"])
                )
            if mode == "-":
                circulation.holds.cancel(ctx.session, actor, mine.id, at=ctx.now)
                return _hold_response(ctx, True, None, item, ctx.say(N_("The hold is cancelled.")))
            if mode == "*":
                changed = circulation.holds.change_pickup(
                    ctx.session, actor, mine.id, pickup.id, ctx.now
                )
                return _hold_response(ctx, True, changed, item, None)
    except DomainError as refusal:
        return _hold_response(ctx, False, None, item, ctx.refusal(refusal))
    return _hold_response(ctx, False, None, item, ctx.say(ASK_DESK))  # an unknown hold mode


# --- fees -----------------------------------------------------------------------------------


@handles("37")
def fee_paid(ctx: Context) -> Response:
    patron = ctx.reader()
    transaction = ctx.request.get(Field.TRANSACTION_ID)

    def answer(ok: bool, message: str | None) -> Response:
        fields = [
            (Field.INSTITUTION_ID, ctx.terminal.unit_code),
            (Field.PATRON_IDENTIFIER, patron.card),
            (Field.TRANSACTION_ID, transaction or None),
            (Field.SCREEN_MESSAGE, message),
        ]
        return Response("38", yn(ok) + ctx.date, fields)

    message = _patron_message(ctx, patron)
    if message is not None or patron.reader is None:
        return answer(False, message)
    currency = ctx.request.fixed.get("currency_type", "").strip().upper()
    if currency and currency != ctx.currency:
        return answer(False, ctx.say(CURRENCY_MISMATCH))
    try:
        amount = Decimal(ctx.request.get(Field.FEE_AMOUNT))
    except InvalidOperation:
        return answer(False, ctx.say(N_("The amount is not a number.")))
    fee_id = ctx.request.get(Field.FEE_IDENTIFIER)
    note = (
        f"{ctx.terminal.actor.display_name}: payment type {ctx.request.fixed.get('payment_type')}"
    )
    if transaction:
        note += f", transaction {transaction}"
    try:
        with ctx.session.begin_nested():
            circulation.fees.pay(
                ctx.session,
                ctx.terminal.actor,
                patron.reader.id,
                amount,
                at=ctx.now,
                note=note[:200],
                fee_id=int(fee_id) if fee_id.isdigit() else None,
            )
    except DomainError as refusal:
        if isinstance(refusal, circulation.errors.FeeNotFound):
            return answer(False, ctx.say(N_("No unpaid fee has this number.")))
        # More than is owed, nothing, or fractions of a cent: nothing is taken.
        return answer(False, ctx.say(N_("The payment was not taken: please check the amount.")))
    return answer(True, ctx.say(N_("Thank you: the payment is taken.")))


# --- the machine ----------------------------------------------------------------------------

# The order of the supported-messages field (BX) of the ACS status.
SUPPORTED_ORDER = (
    "23", "11", "09", "01", "99", "97", "93", "63", "35", "37", "17", "19", "25", "15", "29", "65"
)  # fmt: skip


def supported_messages() -> str:
    """Y for each request this server answers: the handlers, status, resend and login."""
    done = set(HANDLERS) | {"99", "97", "93"}
    return "".join(yn(c in done) for c in SUPPORTED_ORDER)


def acs_status(
    terminal: Terminal | None, now: dt.datetime, *, timeout_s: int, retries: int
) -> Response:
    """The answer to an SC status (99): online, what is allowed, and the clock."""
    online = terminal is not None
    tz = _zone(terminal.timezone) if terminal is not None else dt.UTC
    fixed = (
        yn(online)  # on-line status
        + yn(online)  # checkin ok
        + yn(online)  # checkout ok
        + yn(online)  # ACS renewal policy
        + yn(online)  # status update ok
        + "N"  # offline ok
        + f"{min(timeout_s * 10, 999):03d}"  # in tenths of a second
        + f"{retries:03d}"
        + format_date(now, tz)
        + "2.00"
    )
    fields: list[tuple[str, object]] = [
        (Field.INSTITUTION_ID, terminal.unit_code if terminal is not None else ""),
        (Field.LIBRARY_NAME, terminal.unit_name if terminal is not None else None),
        (Field.SUPPORTED_MESSAGES, supported_messages() if online else "N" * 16),
        (Field.TERMINAL_LOCATION, terminal.location if terminal is not None else None),
    ]
    if terminal is None:
        fields.append((Field.SCREEN_MESSAGE, NOT_LOGGED_IN))
    return Response("98", fixed, fields)


# The negative answer of each request: its response code, fixed part after the date's
# place, and the identified fields the standard requires (given blank, or as sent).
_NEGATIVE: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "23": (
        "24",
        "Y" * 4 + " " * 10 + "000",
        "",
        (Field.INSTITUTION_ID, Field.PATRON_IDENTIFIER, Field.PERSONAL_NAME),
    ),
    "01": (
        "24",
        "Y" * 4 + " " * 10 + "000",
        "",
        (Field.INSTITUTION_ID, Field.PATRON_IDENTIFIER, Field.PERSONAL_NAME),
    ),
    "25": (
        "26",
        "Y" * 4 + " " * 10 + "000",
        "",
        (Field.INSTITUTION_ID, Field.PATRON_IDENTIFIER, Field.PERSONAL_NAME),
    ),
    "63": (
        "64",
        "Y" * 4 + " " * 10 + "000",
        "0000" * 6,
        (Field.INSTITUTION_ID, Field.PATRON_IDENTIFIER, Field.PERSONAL_NAME),
    ),
    "11": (
        "12",
        "0NUN",
        "",
        (
            Field.INSTITUTION_ID,
            Field.PATRON_IDENTIFIER,
            Field.ITEM_IDENTIFIER,
            Field.TITLE_IDENTIFIER,
            Field.DUE_DATE,
        ),
    ),
    "29": (
        "30",
        "0NUU",
        "",
        (
            Field.INSTITUTION_ID,
            Field.PATRON_IDENTIFIER,
            Field.ITEM_IDENTIFIER,
            Field.TITLE_IDENTIFIER,
            Field.DUE_DATE,
        ),
    ),
    "09": (
        "10",
        "0NUN",
        "",
        (Field.INSTITUTION_ID, Field.ITEM_IDENTIFIER, Field.PERMANENT_LOCATION),
    ),
    "65": ("66", "0" + "0000" * 2, "", (Field.INSTITUTION_ID,)),
    "17": ("18", "01" + "00" + "01", "", (Field.ITEM_IDENTIFIER, Field.TITLE_IDENTIFIER)),
    "19": ("20", "0", "", (Field.ITEM_IDENTIFIER,)),
    "15": ("16", "0N", "", (Field.INSTITUTION_ID, Field.PATRON_IDENTIFIER)),
    "37": ("38", "N", "", (Field.INSTITUTION_ID, Field.PATRON_IDENTIFIER)),
    "35": ("36", "N", "", (Field.INSTITUTION_ID, Field.PATRON_IDENTIFIER)),
}
_ECHOED = frozenset({Field.PATRON_IDENTIFIER, Field.ITEM_IDENTIFIER})


def negative(request: Request, now: dt.datetime, message: str) -> Response | None:
    """The negative answer to a request that could not be handled at all (sent before a
    successful login, or the database failed): the machine shows why, and nothing is done."""
    shape = _NEGATIVE.get(request.command)
    if shape is None:
        return None
    command, before, after, required = shape
    fields: list[tuple[str, object]] = [
        (code, request.get(code) if code in _ECHOED else "") for code in required
    ]
    fields.append((Field.SCREEN_MESSAGE, message))
    return Response(command, before + format_date(now, dt.UTC) + after, fields)
