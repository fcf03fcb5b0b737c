"""Request and response models of circulation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from biblioverse.fields import DbId, Line

Amount = Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)]
Count = Annotated[int, Strict(), Field(ge=0, le=10_000)]


class PolicyIO(BaseModel):
    """What a rule grants. ``loan_hours`` set makes it an hour loan."""

    model_config = ConfigDict(extra="forbid")

    loan_days: Annotated[int, Strict(), Field(ge=1, le=366)] = 28
    loan_hours: Annotated[int, Strict(), Field(ge=1, le=72)] | None = None
    renewals: Count = 2
    max_loans: Count = 20
    max_holds: Count = 10
    self_service: Annotated[bool, Strict()] = True
    mobile_checkout: Annotated[bool, Strict()] = True
    hold_pickup: Literal["any", "home", "owner"] = "any"
    fine_per_day: Amount = Decimal("0.10")
    fine_cap: Amount = Decimal("10.00")
    lost_after_days: Count = 60
    lost_fee: Amount = Decimal("50.00")
    block_threshold: Amount = Decimal("10.00")
    floating: Annotated[bool, Strict()] = False


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_unit_id: DbId
    reader_category: Literal["adult", "child", "student", "staff", "visitor"] | None = None
    item_type: (
        Literal["book", "periodical", "children", "reference", "precious", "audiovisual"] | None
    ) = None
    name: Line = Field(default="", max_length=200)
    policy: PolicyIO = PolicyIO()


class RuleOut(RuleIn):
    id: int
    org_path: str


class ExplainOut(BaseModel):
    rule: RuleOut
    reasons: list[str]
    considered: list[int]  # ids of every matching rule, the applied one first
    lending_library_id: int
    due_if_borrowed_now: dt.datetime
    due_at_library_id: int


Barcode = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,32}$")]
Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")]


class CheckoutIn(BaseModel):
    """A copy by barcode or RFID tag. A reader borrowing by phone leaves reader_id out."""

    model_config = ConfigDict(extra="forbid")

    reader_id: DbId | None = None
    barcode: Barcode | None = None
    rfid_tag: Tag | None = None
    library_id: DbId


class CheckinIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    barcode: Barcode | None = None
    rfid_tag: Tag | None = None
    library_id: DbId


class LoanOut(BaseModel):
    id: int
    item_id: int
    reader_id: int | None
    library_id: int
    channel: str
    loaned_at: dt.datetime
    due_at: dt.datetime
    renewals: int
    returned_at: dt.datetime | None
