"""Request and response models of reader accounts."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field

from biblioverse.fields import DbId, IsoDate, Line, YesNo
from biblioverse.readers.models import Reader
from biblioverse.readers.rules import Category, Status, effective_status


class RegistrationIn(BaseModel):
    name: Line = Field(max_length=120)
    birth_date: IsoDate
    category: Category
    home_library_id: DbId
    email: str = Field(max_length=254)
    phone: str | None = Field(default=None, max_length=24)
    guardian_name: Line | None = Field(default=None, max_length=120)
    password: str = Field(max_length=128)
    pin: str | None = Field(default=None, max_length=6)
    preferred_locale: str | None = Field(default=None, pattern=r"^(en|zh_Hans)$")


class StaffReaderIn(BaseModel):
    name: Line = Field(max_length=120)
    birth_date: IsoDate
    category: Category
    home_library_id: DbId
    card_number: str | None = Field(default=None, max_length=20)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=24)
    guardian_name: Line | None = Field(default=None, max_length=120)
    password: str | None = Field(default=None, max_length=128)
    pin: str | None = Field(default=None, max_length=6)
    expires_on: IsoDate | None = None
    # a reader with the same name and birth date is on file, and the desk checked that
    # this is another person
    duplicate_ok: bool = False


class StaffChangeIn(BaseModel):
    status: Status | None = None
    category: Category | None = None
    expires_on: IsoDate | None = None
    home_library_id: DbId | None = None
    blocked_reason: Line | None = Field(default=None, max_length=200)


class OwnChangeIn(BaseModel):
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=24)
    keep_history: YesNo | None = None
    preferred_locale: str | None = Field(default=None, pattern=r"^(en|zh_Hans)$")
    new_password: str | None = Field(default=None, max_length=128)
    new_pin: str | None = Field(default=None, max_length=6)
    current_password: str | None = Field(
        default=None,
        max_length=128,
        description="needed to change the password, the PIN or the e-mail address (a reader "
        "without a password gives their PIN)",
    )


class ReaderSummary(BaseModel):
    """What any desk of the consortium sees of a card from another library."""

    id: int
    card_number: str
    name: str
    home_library_id: DbId
    category: Category
    status: Status
    expires_on: IsoDate

    @classmethod
    def of(cls, r: Reader, today: dt.date) -> ReaderSummary:
        return cls(
            id=r.id,
            card_number=r.card_number,
            name=r.name,
            home_library_id=r.home_library_id,
            category=Category(r.category),
            status=effective_status(Status(r.status), r.expires_on, today),
            expires_on=r.expires_on,
        )


class ReaderOut(ReaderSummary):
    email: str | None
    phone: str | None
    birth_date: IsoDate
    guardian_name: str | None
    keep_history: bool
    preferred_locale: str | None
    registered_via: str
    blocked_reason: str | None
    has_pin: bool
    created_at: dt.datetime
    activated_at: dt.datetime | None

    @classmethod
    def of(cls, r: Reader, today: dt.date) -> ReaderOut:
        summary = ReaderSummary.of(r, today).model_dump()
        return cls(
            **summary,
            email=r.email,
            phone=r.phone,
            birth_date=r.birth_date,
            guardian_name=r.guardian_name,
            keep_history=r.keep_history,
            preferred_locale=r.preferred_locale,
            registered_via=r.registered_via,
            blocked_reason=r.blocked_reason,
            has_pin=r.pin_hash is not None,
            created_at=r.created_at,
            activated_at=r.activated_at,
        )


class ReaderPage(BaseModel):
    total: int
    items: list[ReaderOut]
