"""Pure decisions about reader cards: validation, activation, expiry. No I/O."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from biblioverse.access import Actor, DeviceCapability, Permission
from biblioverse.errors import FieldError
from biblioverse.i18n import N_


class ReaderAccess(IntEnum):
    """How much of a reader's account an actor may see and act on (docs/adr/0025).
    One card is valid at every member library, so any desk serves the reader standing at
    it; browsing a reader's account is for the reader and the home library's staff."""

    NONE = 0
    DESK = 1  # serve them at this desk: card, status, lend, renew, holds to collect here
    FULL = 2  # the reader themself, or staff whose role covers the reader's home library


def reader_access(actor: Actor, reader_id: int, home_path: str) -> ReaderAccess:
    if actor.is_reader:
        return ReaderAccess.FULL if actor.id == reader_id else ReaderAccess.NONE
    if actor.is_staff and actor.can(Permission.READERS_READ, home_path):
        return ReaderAccess.FULL
    if actor.can(Permission.CIRCULATION_OPERATE) or actor.device_may(DeviceCapability.SIP2):
        return ReaderAccess.DESK
    return ReaderAccess.NONE


class Category(StrEnum):
    ADULT = "adult"
    CHILD = "child"
    STUDENT = "student"
    STAFF = "staff"
    VISITOR = "visitor"


class Status(StrEnum):
    PENDING = "pending"  # registered online, identity not yet checked at a desk
    ACTIVE = "active"
    BLOCKED = "blocked"
    EXPIRED = "expired"


class Channel(StrEnum):
    ONLINE = "online"
    DESK = "desk"
    IMPORT = "import"


# How long a card is valid from activation, in days.
VALIDITY_DAYS: dict[Category, int] = {
    Category.ADULT: 3 * 365,
    Category.CHILD: 3 * 365,
    Category.STUDENT: 365,
    Category.STAFF: 365,
    Category.VISITOR: 30,
}

# Who may sign themselves up online; staff cards are issued by the library only.
SELF_SERVICE_CATEGORIES = frozenset(
    {Category.ADULT, Category.CHILD, Category.STUDENT, Category.VISITOR}
)

CHILD_MAX_AGE = 13  # below 14 a guardian registers with the child
ADULT_MIN_AGE = 18
STUDENT_MIN_AGE = 6
MAX_AGE = 120

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-]{5,19}$")
_PIN = re.compile(r"^[0-9]{4,6}$")
_CARD = re.compile(r"^[A-Za-z0-9]{4,20}$")


def age_on(birth: dt.date, today: dt.date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def new_card_number(prefix: str = "2900", length: int = 14) -> str:
    """A random card number with a Luhn check digit, so a mistyped digit is caught."""
    body = prefix + "".join(secrets.choice("0123456789") for _ in range(length - len(prefix) - 1))
    return body + luhn_check_digit(body)


def card_number_errors(card: str) -> list[FieldError]:
    if not _CARD.match(card):
        return [
            FieldError(
                "card_number",
                "invalid_card_number",
                N_("A card number is 4 to 20 letters or digits."),
            )
        ]
    return []


def password_errors(password: str, *, field: str = "password", card: str = "") -> list[FieldError]:
    if len(password) < 8:
        return [FieldError(field, "too_short", N_("The password needs at least 8 characters."))]
    if len(password) > 128:
        return [FieldError(field, "too_long", N_("The password may have 128 characters at most."))]
    if card and password == card:
        return [FieldError(field, "same_as_card", N_("The password may not be the card number."))]
    return []


def pin_errors(pin: str | None) -> list[FieldError]:
    if pin is None or pin == "":
        return []
    if not _PIN.match(pin):
        return [FieldError("pin", "invalid_pin", N_("The PIN is 4 to 6 digits."))]
    if len(set(pin)) == 1:
        return [FieldError("pin", "weak_pin", N_("The PIN may not repeat one digit."))]
    return []


def email_errors(email: str, field: str = "email") -> list[FieldError]:
    if not _EMAIL.match(email) or len(email) > 254:
        return [FieldError(field, "invalid_email", N_("This is not an e-mail address."))]
    return []


def phone_errors(phone: str, field: str = "phone") -> list[FieldError]:
    if not _PHONE.match(phone):
        return [FieldError(field, "invalid_phone", N_("This is not a phone number."))]
    return []


@dataclass(frozen=True)
class RegistrationData:
    name: str
    birth_date: dt.date | None
    category: str
    email: str | None = None
    phone: str | None = None
    guardian_name: str | None = None


def registration_errors(
    data: RegistrationData, *, today: dt.date, channel: Channel
) -> list[FieldError]:
    errors: list[FieldError] = []
    name = data.name.strip()
    if not name:
        errors.append(FieldError("name", "required", N_("Please give your name.")))
    elif len(name) > 120:
        errors.append(
            FieldError("name", "too_long", N_("The name may have 120 characters at most."))
        )
    try:
        category = Category(data.category)
    except ValueError:
        errors.append(FieldError("category", "invalid_category", N_("Choose a reader category.")))
        category = None
    if (
        category is not None
        and channel is Channel.ONLINE
        and category not in SELF_SERVICE_CATEGORIES
    ):
        errors.append(
            FieldError("category", "not_self_service", N_("Staff cards are issued by the library."))
        )
    if data.email:
        errors += email_errors(data.email)
    elif channel is Channel.ONLINE:
        errors.append(
            FieldError("email", "required", N_("An e-mail address is needed to register online."))
        )
    if data.guardian_name and len(data.guardian_name.strip()) > 120:
        errors.append(
            FieldError("guardian_name", "too_long", N_("The name may have 120 characters at most."))
        )
    if data.phone:
        errors += phone_errors(data.phone)
    if data.birth_date is None:
        errors.append(FieldError("birth_date", "required", N_("Please give the date of birth.")))
    elif data.birth_date > today:
        errors.append(
            FieldError("birth_date", "in_future", N_("The date of birth is in the future."))
        )
    elif age_on(data.birth_date, today) > MAX_AGE:
        errors.append(
            FieldError("birth_date", "implausible", N_("Please check the date of birth."))
        )
    elif category is not None:
        age = age_on(data.birth_date, today)
        if category is Category.CHILD and age > CHILD_MAX_AGE:
            errors.append(
                FieldError(
                    "category", "too_old_for_child", N_("A child card is for readers under 14.")
                )
            )
        if category is Category.ADULT and age < ADULT_MIN_AGE:
            errors.append(
                FieldError(
                    "category",
                    "too_young_for_adult",
                    N_("An adult card is for readers of 18 and over."),
                )
            )
        if category is Category.STUDENT and age < STUDENT_MIN_AGE:
            errors.append(
                FieldError(
                    "category",
                    "too_young_for_student",
                    N_("A student card is for readers of 6 and over."),
                )
            )
        if age <= CHILD_MAX_AGE and not (data.guardian_name or "").strip():
            errors.append(
                FieldError(
                    "guardian_name",
                    "required",
                    N_("Readers under 14 register with a parent or guardian."),
                )
            )
    return errors


def initial_status(channel: Channel) -> Status:
    """Online sign-ups wait for an identity check at any desk; desk and import are checked."""
    return Status.PENDING if channel is Channel.ONLINE else Status.ACTIVE


def expiry_for(category: Category, start: dt.date) -> dt.date:
    return start + dt.timedelta(days=VALIDITY_DAYS[category])


def effective_status(status: Status, expires_on: dt.date, today: dt.date) -> Status:
    if status is Status.ACTIVE and expires_on < today:
        return Status.EXPIRED
    return status


def activation_errors(status: Status) -> list[FieldError]:
    if status is not Status.PENDING:
        return [FieldError("status", "not_pending", N_("Only a pending card can be activated."))]
    return []


# Which stored status a librarian may move a card to, from which.
STAFF_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.ACTIVE, Status.BLOCKED}),
    Status.ACTIVE: frozenset({Status.BLOCKED, Status.EXPIRED}),
    Status.BLOCKED: frozenset({Status.ACTIVE}),
    Status.EXPIRED: frozenset({Status.ACTIVE}),
}


def can_move(current: Status, new: Status) -> bool:
    return new in STAFF_TRANSITIONS[current]


# --- the reader record at a staff desk (issue 29) -----------------------------------------

REASON_MAX = 200
NOTE_MAX = 1000


def reason_errors(reason: str, field: str = "reason") -> list[FieldError]:
    """A block, an unblock and a waiver say why: the next desk reads it."""
    text = reason.strip()
    if not text:
        return [FieldError(field, "required", N_("Say why."))]
    if len(text) > REASON_MAX:
        return [FieldError(field, "too_long", N_("At most 200 characters."))]
    return []


def note_errors(text: str) -> list[FieldError]:
    body = text.strip()
    if not body:
        return [FieldError("text", "required", N_("Write the note."))]
    if len(body) > NOTE_MAX:
        return [FieldError("text", "too_long", N_("A note may have 1000 characters at most."))]
    return []


def renewed_expiry(category: Category, expires_on: dt.date, today: dt.date) -> dt.date:
    """A card renewed before it runs out runs on from its date (the reader loses no days);
    one that has run out runs from today (Koha's "from the expiry or from today")."""
    return expiry_for(category, max(expires_on, today))


def renewal_errors(status: Status) -> list[FieldError]:
    """A blocked card is unblocked first (with its reason); a pending one activated."""
    if status in (Status.BLOCKED, Status.PENDING):
        return [
            FieldError(
                "status", "not_renewable", N_("A blocked or pending card cannot be renewed.")
            )
        ]
    return []


def same_person_key(name: str) -> str:
    """Names compared for the duplicate check: case and spacing do not make another person."""
    return " ".join(name.split()).casefold()
