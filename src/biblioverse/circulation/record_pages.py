"""The reader record in the staff console (issue 29): opened from the readers list or by a
scanned card, with the card, its messages, loans, holds, fees, history and notes, and the
desk's actions on them. Each action calls one service and shows the record again saying
what happened; cancelling a hold, waiving a fee and blocking a card are confirmed first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from biblioverse import i18n, readers
from biblioverse.access import Actor
from biblioverse.circulation import fees, holds, record
from biblioverse.circulation.words import NO_READER, to_desk
from biblioverse.deps import DbSession, Now
from biblioverse.errors import (
    DomainError,
    DuplicateValue,
    FieldError,
    PermissionDenied,
    ValidationFailed,
    status_of,
)
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.web.pages import Csrf, StaffPage, error_page, redirect, render

router = APIRouter(include_in_schema=False)

DONE = {
    "card_renewed": N_("The card is renewed."),
    "blocked": N_("The card is blocked."),
    "unblocked": N_("The card is unblocked."),
    "contact": N_("The contact details are saved."),
    "note": N_("The note is added."),
    "hold_cancelled": N_("The hold is cancelled."),
    "pickup": N_("The hold will be collected at the new library."),
    "waived": N_("The fee is waived."),
}
FORBIDDEN = N_("Your role does not allow this for this reader here.")
STATUS_REFUSED = N_("The card's status does not allow this.")
TAKEN = N_("This e-mail address belongs to another reader.")
CHANGED = N_("This was changed elsewhere in the meantime.")


def _currency(request: Request) -> str:
    return str(request.app.state.settings.currency)


def _words(exc: DomainError) -> str:
    if isinstance(exc, ValidationFailed) and exc.errors:
        return i18n.field_message(exc.errors[0])
    if isinstance(exc, PermissionDenied):
        return _(FORBIDDEN)
    if isinstance(exc, DuplicateValue):
        return _(TAKEN)
    if exc.code == "illegal_transition":
        return _(CHANGED)
    if isinstance(exc, readers.InvalidStatusChange):
        return _(STATUS_REFUSED)
    return to_desk(exc)


def _show(
    request: Request,
    session: DbSession,
    who: Actor,
    reader_id: int,
    now: dt.datetime,
    *,
    status_code: int = 200,
    notice: str = "",
    problem: str = "",
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    renewals: record.Renewals | None = None,
) -> HTMLResponse:
    rec = record.reader_record(session, who, reader_id, at=now)
    return render(
        request,
        "staff/reader.html",
        who,
        status_code,
        rec=rec,
        now=now,
        currency=_currency(request),
        notice=notice,
        problem=problem,
        errors=errors or {},
        values=values or {},
        renewals=renewals,
        refused_words=[(line, to_desk(exc)) for line, exc in renewals.refused] if renewals else [],
        section="readers",
    )


def _after(
    request: Request,
    session: DbSession,
    who: Actor,
    reader_id: int,
    now: dt.datetime,
    done: str,
    action: Callable[[], object],
    *,
    values: dict[str, str] | None = None,
) -> Response:
    """Do one action in a savepoint; show the record saying what happened, or why not."""
    try:
        with session.begin_nested():
            action()
    except DomainError as exc:
        errors = (
            {e.field: i18n.field_message(e) for e in exc.errors}
            if isinstance(exc, ValidationFailed)
            else {}
        )
        return _show(
            request,
            session,
            who,
            reader_id,
            now,
            status_code=status_of(exc),
            problem=_words(exc),
            errors=errors,
            values=values,
        )
    return _show(request, session, who, reader_id, now, notice=_(DONE[done]))


def _confirm(
    request: Request,
    who: Actor,
    reader_id: int,
    *,
    question: str,
    action: str,
    fields: dict[str, str],
    button: str,
) -> HTMLResponse:
    """The confirm step of a destructive action: the same form again, with confirm=yes."""
    return render(
        request,
        "staff/reader_confirm.html",
        who,
        reader_id=reader_id,
        question=question,
        action=action,
        fields=fields,
        button=button,
        section="readers",
    )


# --- opening a record ------------------------------------------------------------------


@router.get("/staff/readers/find", response_class=HTMLResponse)
def find_card(
    request: Request,
    session: DbSession,
    who: StaffPage,
    card: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """A scanned or typed card number opens its record (any desk of the consortium)."""
    try:
        reader = readers.lookup_card(session, who, card)
    except readers.ReaderNotFound:
        return error_page(request, 404, _(NO_READER))
    return redirect(f"/staff/readers/{reader.id}")


@router.get("/staff/readers/{reader_id}", response_class=HTMLResponse)
def reader_page(
    reader_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
) -> Response:
    return _show(request, session, who, reader_id, now)


# --- loans -------------------------------------------------------------------------------


class RenewForm(BaseModel):
    loan_id: str = Field(default="", max_length=20)  # empty: every loan this desk may renew


@router.post("/staff/readers/{reader_id}/renew", response_class=HTMLResponse, dependencies=[Csrf])
def renew_loans(
    reader_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    form: Annotated[RenewForm, Form()],
) -> Response:
    loan_id = int(form.loan_id) if form.loan_id.strip().isdigit() else None
    if form.loan_id.strip() and loan_id is None:
        return _show(
            request, session, who, reader_id, now, status_code=422, problem=_("No such loan.")
        )
    try:
        done = record.renew_loans(session, who, reader_id, at=now, loan_id=loan_id)
    except DomainError as exc:
        return _show(
            request, session, who, reader_id, now, status_code=status_of(exc), problem=_words(exc)
        )
    notice = i18n.ngettext("%(n)d loan renewed.", "%(n)d loans renewed.", len(done.renewed)) % {
        "n": len(done.renewed)
    }
    return _show(request, session, who, reader_id, now, notice=notice, renewals=done)


# --- holds -------------------------------------------------------------------------------


class HoldStepForm(BaseModel):
    confirm: str = Field(default="", max_length=10)
    pickup_library_id: str = Field(default="", max_length=20)


@router.post(
    "/staff/readers/{reader_id}/holds/{hold_id}/cancel",
    response_class=HTMLResponse,
    dependencies=[Csrf],
)
def cancel_hold(
    reader_id: DbId,
    hold_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    form: Annotated[HoldStepForm, Form()],
) -> Response:
    try:
        line = record.hold_of(session, who, reader_id, hold_id)
    except DomainError as exc:
        return _show(
            request, session, who, reader_id, now, status_code=status_of(exc), problem=_words(exc)
        )
    if form.confirm != "yes":
        return _confirm(
            request,
            who,
            reader_id,
            question=_("Cancel the hold on “%(title)s”? The reader leaves the queue.")
            % {"title": line.title},
            action=f"/staff/readers/{reader_id}/holds/{hold_id}/cancel",
            fields={},
            button=_("Cancel the hold"),
        )
    return _after(
        request,
        session,
        who,
        reader_id,
        now,
        "hold_cancelled",
        lambda: holds.cancel(session, who, hold_id, at=now),
    )


@router.post(
    "/staff/readers/{reader_id}/holds/{hold_id}/pickup",
    response_class=HTMLResponse,
    dependencies=[Csrf],
)
def change_pickup(
    reader_id: DbId,
    hold_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    form: Annotated[HoldStepForm, Form()],
) -> Response:
    try:
        record.hold_of(session, who, reader_id, hold_id)
    except DomainError as exc:
        return _show(
            request, session, who, reader_id, now, status_code=status_of(exc), problem=_words(exc)
        )
    if not form.pickup_library_id.isdigit():
        return _show(
            request,
            session,
            who,
            reader_id,
            now,
            status_code=422,
            problem=_("Choose a library to collect it at."),
            errors={f"pickup-{hold_id}": _("Choose a library to collect it at.")},
        )
    unit_id = int(form.pickup_library_id)
    return _after(
        request,
        session,
        who,
        reader_id,
        now,
        "pickup",
        lambda: holds.change_pickup(session, who, hold_id, unit_id, now),
    )


# --- fees --------------------------------------------------------------------------------


class PayForm(BaseModel):
    amount: str = Field(default="", max_length=40)
    note: str = Field(default="", max_length=200)


def _money(text: str, field: str = "amount") -> Decimal:
    try:
        value = Decimal(text.strip())
        # no money is written with an exponent, and a huge one cannot be rounded to cents
        if not value.is_finite() or value.adjusted() > 9:
            raise InvalidOperation
    except InvalidOperation:
        raise ValidationFailed(
            [FieldError(field, "invalid", N_("An amount with at most two decimals, like 0.50."))]
        ) from None
    return value


@router.post("/staff/readers/{reader_id}/pay", response_class=HTMLResponse, dependencies=[Csrf])
def take_payment(
    reader_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    form: Annotated[PayForm, Form()],
) -> Response:
    """Take a payment (the oldest fees first) and show its receipt."""
    try:
        with session.begin_nested():
            readers.require_access(session, who, reader_id, readers.ReaderAccess.DESK)
            paid = fees.pay(
                session, who, reader_id, _money(form.amount), at=now, note=form.note.strip()
            )
    except DomainError as exc:
        errors = (
            {e.field: i18n.field_message(e) for e in exc.errors}
            if isinstance(exc, ValidationFailed)
            else {}
        )
        return _show(
            request,
            session,
            who,
            reader_id,
            now,
            status_code=status_of(exc),
            problem=_words(exc),
            errors=errors,
            values=form.model_dump(),
        )
    first, last = paid[0].id, paid[-1].id
    return redirect(f"/staff/readers/{reader_id}/receipt?first={first}&last={last}")


@router.get("/staff/readers/{reader_id}/receipt", response_class=HTMLResponse)
def payment_receipt(
    reader_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    first: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
    last: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
) -> Response:
    lines = record.receipt(session, who, reader_id, first, last)
    if not lines:
        return error_page(request, 404, _("No such receipt."))
    reader = readers.get(session, reader_id)
    rec_tz = record.reader_record(session, who, reader_id, at=now).tz
    return render(
        request,
        "staff/reader_receipt.html",
        who,
        reader=reader,
        lines=lines,
        total=sum((x.amount for x in lines), Decimal("0.00")),
        tz=rec_tz,
        number=f"{first}-{last}" if first != last else str(first),
        currency=_currency(request),
        left=fees.balance(session, reader_id),
        section="readers",
    )


class WaiveForm(BaseModel):
    reason: str = Field(default="", max_length=200)
    amount: str = Field(default="", max_length=40)  # empty: all that is left unpaid
    confirm: str = Field(default="", max_length=10)


@router.post(
    "/staff/readers/{reader_id}/fees/{fee_id}/waive",
    response_class=HTMLResponse,
    dependencies=[Csrf],
)
def waive_fee(
    reader_id: DbId,
    fee_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    form: Annotated[WaiveForm, Form()],
) -> Response:
    rec = record.reader_record(session, who, reader_id, at=now)
    row = next((f for f in rec.fees if f.fee.id == fee_id), None)
    if row is None:
        return error_page(request, 404, _("No such fee on this card."))

    def waive() -> None:
        amount = _money(form.amount) if form.amount.strip() else None
        fees.waive(session, who, fee_id, amount, note=form.reason, at=now)

    if form.confirm != "yes" and form.reason.strip():
        left = i18n.format_money(row.fee.balance, _currency(request))
        return _confirm(
            request,
            who,
            reader_id,
            question=_("Waive %(amount)s of this fee? Reason: %(reason)s")
            % {
                "amount": i18n.format_money(_money(form.amount), _currency(request))
                if _amount_ok(form.amount)
                else left,
                "reason": form.reason.strip(),
            },
            action=f"/staff/readers/{reader_id}/fees/{fee_id}/waive",
            fields={"reason": form.reason, "amount": form.amount},
            button=_("Waive the fee"),
        )
    return _after(
        request,
        session,
        who,
        reader_id,
        now,
        "waived",
        waive,
        values={f"waive-{fee_id}": form.reason},
    )


def _amount_ok(text: str) -> bool:
    try:
        value = Decimal(text.strip()) if text.strip() else None
        return value is not None and value.is_finite() and value.adjusted() <= 9
    except InvalidOperation:
        return False


# --- the card ----------------------------------------------------------------------------


class ReasonForm(BaseModel):
    reason: str = Field(default="", max_length=200)
    confirm: str = Field(default="", max_length=10)


@router.post(
    "/staff/readers/{reader_id}/card/renew", response_class=HTMLResponse, dependencies=[Csrf]
)
def renew_card(
    reader_id: DbId, request: Request, session: DbSession, who: StaffPage, now: Now
) -> Response:
    return _after(
        request,
        session,
        who,
        reader_id,
        now,
        "card_renewed",
        lambda: readers.renew_card(session, who, reader_id, at=now),
    )


@router.post("/staff/readers/{reader_id}/block", response_class=HTMLResponse, dependencies=[Csrf])
def block_card(
    reader_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    form: Annotated[ReasonForm, Form()],
) -> Response:
    if form.confirm != "yes" and form.reason.strip():
        if not record.reader_record(session, who, reader_id, at=now).may_manage:
            return _show(
                request, session, who, reader_id, now, status_code=403, problem=_(FORBIDDEN)
            )
        return _confirm(
            request,
            who,
            reader_id,
            question=_("Block this card? Reason: %(reason)s") % {"reason": form.reason.strip()},
            action=f"/staff/readers/{reader_id}/block",
            fields={"reason": form.reason},
            button=_("Block the card"),
        )
    return _after(
        request,
        session,
        who,
        reader_id,
        now,
        "blocked",
        lambda: readers.block(session, who, reader_id, form.reason, at=now),
    )


@router.post("/staff/readers/{reader_id}/unblock", response_class=HTMLResponse, dependencies=[Csrf])
def unblock_card(
    reader_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    form: Annotated[ReasonForm, Form()],
) -> Response:
    return _after(
        request,
        session,
        who,
        reader_id,
        now,
        "unblocked",
        lambda: readers.unblock(session, who, reader_id, form.reason, at=now),
    )


class ContactForm(BaseModel):
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=24)


@router.post("/staff/readers/{reader_id}/contact", response_class=HTMLResponse, dependencies=[Csrf])
def change_contact(
    reader_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    form: Annotated[ContactForm, Form()],
) -> Response:
    return _after(
        request,
        session,
        who,
        reader_id,
        now,
        "contact",
        lambda: readers.change_contact(
            session, who, reader_id, email=form.email, phone=form.phone, at=now
        ),
        values=form.model_dump(),
    )


class NoteForm(BaseModel):
    text: str = Field(default="", max_length=2000)


@router.post("/staff/readers/{reader_id}/notes", response_class=HTMLResponse, dependencies=[Csrf])
def add_note(
    reader_id: DbId,
    request: Request,
    session: DbSession,
    who: StaffPage,
    now: Now,
    form: Annotated[NoteForm, Form()],
) -> Response:
    return _after(
        request,
        session,
        who,
        reader_id,
        now,
        "note",
        lambda: readers.add_note(session, who, reader_id, form.text, at=now),
        values={"text": form.text},
    )
