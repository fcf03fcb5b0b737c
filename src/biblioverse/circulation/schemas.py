"""Request and response models of circulation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict

from biblioverse import catalog, readers
from biblioverse.circulation.lifecycle import CourierState
from biblioverse.circulation.rules import PickupPolicy
from biblioverse.fields import DbId, IsoDate, Line

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
    hold_pickup: PickupPolicy = PickupPolicy.ANY
    fine_per_day: Amount = Decimal("0.10")
    fine_cap: Amount = Decimal("10.00")
    lost_after_days: Count = 60
    lost_fee: Amount = Decimal("50.00")
    block_threshold: Amount = Decimal("10.00")
    floating: Annotated[bool, Strict()] = False
    hold_priority: Annotated[int, Strict(), Field(ge=-100, le=100)] = 0
    hold_shelf_days: Annotated[int, Strict(), Field(ge=1, le=90)] = 7
    courier_fee: Amount = Decimal("5.00")


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    org_unit_id: DbId
    reader_category: readers.Category | None = None
    item_type: catalog.ItemType | None = None
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
    lendable: bool  # a desk would lend it now, without an override
    refusal: str | None  # else the code of the first refusal checkout would meet


Barcode = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,32}$")]
Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,64}$")]


class CheckoutIn(BaseModel):
    """A copy by barcode or RFID tag. A reader borrowing by phone leaves reader_id out."""

    model_config = ConfigDict(extra="forbid")

    reader_id: DbId | None = None
    barcode: Barcode | None = None
    rfid_tag: Tag | None = None
    library_id: DbId
    override: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    presence: Annotated[
        str | None,
        Field(
            max_length=400,
            description="A reader borrowing by phone: the ticket `POST /circulation/presence` "
            "gave for a sign scanned in this library (not needed on the library's network).",
        ),
    ] = None


class PresenceIn(BaseModel):
    """A "you are here" sign scanned: its library and the code in its QR code (`here`)."""

    model_config = ConfigDict(extra="forbid")

    library_id: DbId
    code: Annotated[str, Field(min_length=1, max_length=64)]


class PresenceOut(BaseModel):
    library_id: int
    ticket: str
    until: dt.datetime


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


Reason = Annotated[str, Field(min_length=1, max_length=200)]


class RenewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    override: Reason | None = None


class CheckinOut(BaseModel):
    """What a check-in did and where the copy goes: ``shelve`` (back on the shelf here),
    ``hold_shelf`` (set aside here for ``hold_id``) or ``transit`` (send to ``library_id``)."""

    loan: LoanOut | None
    item_id: int
    barcode: str
    action: Literal["shelve", "hold_shelf", "transit"]
    library_id: int
    hold_id: int | None
    transit_id: int | None


class HoldIn(BaseModel):
    """A hold on a title (any copy), or on one copy with ``item_id``. Readers leave
    ``reader_id`` out; staff name the reader."""

    model_config = ConfigDict(extra="forbid")

    reader_id: DbId | None = None
    record_id: DbId
    item_id: DbId | None = None
    pickup_library_id: DbId
    override: Reason | None = None
    not_needed_after: IsoDate | None = None  # unfilled after this day, the hold expires


class HoldOut(BaseModel):
    id: int
    reader_id: int
    record_id: int
    item_id: int | None
    pickup_library_id: int
    status: str
    priority: int
    placed_at: dt.datetime
    suspended_until: dt.date | None
    not_needed_after: dt.date | None
    trapped_item_id: int | None
    ready_at: dt.datetime | None
    expires_at: dt.datetime | None
    position: int | None  # 1: next to be served; None once out of the queue


class SuspendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: dt.date | None = None


class PickupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pickup_library_id: DbId


class TransitOut(BaseModel):
    """A copy travelling; ``from_library_id`` is None when a courier collected it from a
    reader (``reason`` courier)."""

    id: int
    item_id: int
    barcode: str
    title: str
    from_library_id: int | None
    to_library_id: int
    reason: str
    hold_id: int | None
    status: str
    created_at: dt.datetime
    shipped_at: dt.datetime | None
    received_at: dt.datetime | None


class PullOut(BaseModel):
    hold_id: int
    item_id: int
    barcode: str
    call_number: str | None
    title: str
    pickup_library_id: int


class FeeOut(BaseModel):
    id: int
    kind: str
    library_id: int
    loan_id: int | None
    item_id: int | None
    amount: Decimal
    paid: Decimal
    waived: Decimal
    balance: Decimal
    note: str
    created_at: dt.datetime


class FeesOut(BaseModel):
    reader_id: int
    balance: Decimal
    fees: list[FeeOut]


Money = Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=2)]


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reader_id: DbId
    amount: Money
    note: Line = Field(default="", max_length=200)


class WaiverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Money | None = None  # all that is unpaid when left out
    note: Reason


class TransactionOut(BaseModel):
    id: int
    fee_id: int
    kind: str
    amount: Decimal
    at: dt.datetime


class CourierIn(BaseModel):
    """Loans to be collected by courier at ``address`` at ``pickup_at`` (with its UTC
    offset) and taken to the reader's home library. Readers leave ``reader_id`` out."""

    model_config = ConfigDict(extra="forbid")

    reader_id: DbId | None = None
    loan_ids: Annotated[list[DbId], Field(min_length=1, max_length=100)]
    address: Annotated[str, Field(min_length=1, max_length=500)]
    pickup_at: dt.datetime


class CourierItemOut(BaseModel):
    barcode: str
    title: str


class CourierOut(BaseModel):
    id: int
    reader_id: int
    library_id: int  # where the parcel goes: the reader's home library
    address: str
    pickup_at: dt.datetime
    status: CourierState
    fee: Decimal  # the logistics fee quoted at booking
    fee_charged: bool  # charged when the courier collected (not at booking)
    requested_at: dt.datetime
    collected_at: dt.datetime | None
    closed_at: dt.datetime | None
    items: list[CourierItemOut]
