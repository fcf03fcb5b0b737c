"""Cataloguing in the staff console: find a record, create or change it, add and change its
copies. The same services as the API; pages for staff whose roles include cataloguing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from biblioverse import i18n, libraries
from biblioverse.access import Actor, Permission
from biblioverse.catalog import rules, service
from biblioverse.catalog.api import Index
from biblioverse.catalog.editing import RecordForm
from biblioverse.catalog.models import Item
from biblioverse.catalog.search import SearchQuery
from biblioverse.deps import DbSession, Now
from biblioverse.errors import DuplicateValue, ValidationFailed
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.web.pages import (
    Csrf,
    render,
    staff_page,
)

router = APIRouter(include_in_schema=False)

LINES = ("authors", "subjects", "isbns", "series", "notes")


class RecordFields(BaseModel):
    """The cataloguing form as posted: text, one value per line for the lists."""

    title: str = Field(default="", max_length=2000)
    responsibility: str = Field(default="", max_length=2000)
    authors: str = Field(default="", max_length=20000)
    subjects: str = Field(default="", max_length=20000)
    isbns: str = Field(default="", max_length=20000)
    publisher: str = Field(default="", max_length=2000)
    year: str = Field(default="", max_length=20)
    language: str = Field(default="", max_length=20)
    edition: str = Field(default="", max_length=2000)
    physical_description: str = Field(default="", max_length=2000)
    series: str = Field(default="", max_length=20000)
    notes: str = Field(default="", max_length=20000)
    lcc: str = Field(default="", max_length=200)
    ddc: str = Field(default="", max_length=200)
    clc: str = Field(default="", max_length=200)

    def form(self) -> tuple[RecordForm, dict[str, str]]:
        errors: dict[str, str] = {}
        year = None
        if self.year.strip():
            if self.year.strip().isdigit():
                year = int(self.year.strip())
            else:
                errors["year"] = _("A year between 1000 and 2999.")
        values: dict[str, Any] = self.model_dump(exclude={"year"})
        for name in LINES:
            values[name] = values[name].splitlines()
        return RecordForm(**values, year=year), errors


def _values(form: RecordForm) -> dict[str, str]:
    """A form's values as the page's inputs show them."""
    out = {}
    for name, value in vars(form).items():
        if isinstance(value, list):
            out[name] = "\n".join(value)
        else:
            out[name] = "" if value is None else str(value)
    return out


Cataloguer = Annotated[
    Actor,
    Depends(staff_page(Permission.CATALOG_MANAGE, N_("Your role does not include cataloguing."))),
]


def _libraries_for(session: Session, actor: Actor) -> list[libraries.OrgUnit]:
    """Libraries where this person may add copies."""
    return [
        u for u in libraries.service_points(session) if actor.can(Permission.CATALOG_MANAGE, u.path)
    ]


@router.get("/staff/catalog", response_class=HTMLResponse)
def find_records(
    request: Request,
    who: Cataloguer,
    index: Index,
    q: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    page = index.search(SearchQuery(q, limit=30, facets=())) if q.strip() else None
    return render(request, "staff/catalog.html", who, q=q, page=page, section="cataloguing")


def _record_page(
    request: Request,
    session: Session,
    who: Actor,
    record_id: int | None,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status_code: int = 200,
    note: str = "",
    item_values: dict[str, str] | None = None,
    item_errors: dict[str, str] | None = None,
) -> HTMLResponse:
    record = service.get_record(session, record_id) if record_id else None
    items = (
        list(session.scalars(select(Item).where(Item.record_id == record_id).order_by(Item.id)))
        if record_id
        else []
    )
    return render(
        request,
        "staff/record_edit.html",
        who,
        status_code,
        record=record,
        items=items,
        units=libraries.unit_names(session),
        values=values,
        errors=errors,
        note=note,
        item_values=item_values or {},
        item_errors=item_errors or {},
        libraries_here=_libraries_for(session, who),
        item_types=[t.value for t in rules.ItemType],
        section="cataloguing",
    )


@router.get("/staff/catalog/records/new", response_class=HTMLResponse)
def new_record(request: Request, session: DbSession, who: Cataloguer) -> Response:
    return _record_page(request, session, who, None, {}, {})


@router.get("/staff/catalog/records/{record_id}", response_class=HTMLResponse)
def edit_record(
    request: Request,
    record_id: DbId,
    session: DbSession,
    who: Cataloguer,
    saved: str = "",
) -> Response:
    values = _values(service.record_form(session, record_id))
    note = {"record": _("Saved."), "copy": _("Copy added.")}.get(saved, "")
    return _record_page(request, session, who, record_id, values, {}, note=note)


def _save(
    request: Request,
    session: Session,
    who: Actor,
    record_id: int | None,
    fields: RecordFields,
    now: Any,
) -> Response:
    form, errors = fields.form()
    for e in form.cleaned().errors():  # every field's problem at once, not the first kind
        errors.setdefault(e.field, i18n.field_message(e))
    if not errors:
        try:
            with session.begin_nested():
                record = service.save_record(session, who, record_id, form, at=now)
            return RedirectResponse(f"/staff/catalog/records/{record.id}?saved=record", 303)
        except ValidationFailed as exc:
            errors = {e.field: i18n.field_message(e) for e in exc.errors}
    return _record_page(
        request, session, who, record_id, fields.model_dump(), errors, status_code=422
    )


@router.post("/staff/catalog/records/new", response_class=HTMLResponse, dependencies=[Csrf])
def create_record(
    request: Request,
    session: DbSession,
    who: Cataloguer,
    now: Now,
    fields: Annotated[RecordFields, Form()],
) -> Response:
    return _save(request, session, who, None, fields, now)


@router.post("/staff/catalog/records/{record_id}", response_class=HTMLResponse, dependencies=[Csrf])
def update_record(
    request: Request,
    record_id: DbId,
    session: DbSession,
    who: Cataloguer,
    now: Now,
    fields: Annotated[RecordFields, Form()],
) -> Response:
    service.get_record(session, record_id)
    return _save(request, session, who, record_id, fields, now)


class CopyFields(BaseModel):
    barcode: str = Field(default="", max_length=100)
    library_id: str = Field(default="", max_length=20)
    call_number: str = Field(default="", max_length=200)
    item_type: str = Field(default="book", max_length=20)
    price: str = Field(default="", max_length=20)
    rfid_tag: str = Field(default="", max_length=100)


@router.post(
    "/staff/catalog/records/{record_id}/items", response_class=HTMLResponse, dependencies=[Csrf]
)
def add_copy(
    request: Request,
    record_id: DbId,
    session: DbSession,
    who: Cataloguer,
    now: Now,
    fields: Annotated[CopyFields, Form()],
) -> Response:
    service.get_record(session, record_id)
    errors: dict[str, str] = {}
    barcode = fields.barcode.strip()
    if not barcode or len(barcode) > 32 or not barcode.replace("-", "").isalnum():
        errors["barcode"] = _("A barcode of 1 to 32 letters, digits or hyphens.")
    allowed = {u.id for u in _libraries_for(session, who)}
    unit_id = int(fields.library_id) if fields.library_id.isdigit() else 0
    if unit_id not in allowed:
        errors["library_id"] = _("Choose one of your libraries.")
    if not errors:
        data = service.NewItem(
            record_id=record_id,
            barcode=barcode,
            org_unit_id=unit_id,
            item_type=fields.item_type,
            call_number=fields.call_number.strip() or None,
            price=fields.price.strip() or None,
            rfid_tag=fields.rfid_tag.strip() or None,
        )
        try:
            with session.begin_nested():
                service.add_item(session, who, data, at=now)
            return RedirectResponse(f"/staff/catalog/records/{record_id}?saved=copy#copies", 303)
        except ValidationFailed as exc:
            errors = {e.field: i18n.field_message(e) for e in exc.errors}
        except DuplicateValue as exc:
            field = str((exc.details or {}).get("field", "barcode"))
            errors[field] = _("This value is already on another copy.")
    values = _values(service.record_form(session, record_id))
    return _record_page(
        request,
        session,
        who,
        record_id,
        values,
        {},
        status_code=422,
        item_values=fields.model_dump(),
        item_errors=errors,
    )


class ItemFields(BaseModel):
    status: str = Field(default="", max_length=20)
    item_type: str = Field(default="", max_length=20)
    location_id: str = Field(default="", max_length=20)
    call_number: str = Field(default="", max_length=200)
    price: str = Field(default="", max_length=20)
    rfid_tag: str = Field(default="", max_length=100)
    circulates: str = Field(default="", max_length=5)


def _item_page(
    request: Request,
    session: Session,
    who: Actor,
    item: Item,
    errors: dict[str, str],
    *,
    status_code: int = 200,
    note: str = "",
) -> HTMLResponse:
    return render(
        request,
        "staff/item_edit.html",
        who,
        status_code,
        item=item,
        record=service.get_record(session, item.record_id),
        unit=libraries.get_unit(session, item.org_unit_id),
        locations=libraries.locations_of(session, item.org_unit_id),
        statuses=[s.value for s in rules.ItemStatus],
        item_types=[t.value for t in rules.ItemType],
        errors=errors,
        note=note,
        section="cataloguing",
    )


@router.get("/staff/catalog/items/{item_id}", response_class=HTMLResponse)
def edit_item(
    request: Request, item_id: DbId, session: DbSession, who: Cataloguer, saved: str = ""
) -> Response:
    item = service.get_item(session, item_id)
    return _item_page(request, session, who, item, {}, note=_("Saved.") if saved else "")


@router.post("/staff/catalog/items/{item_id}", response_class=HTMLResponse, dependencies=[Csrf])
def update_item(
    request: Request,
    item_id: DbId,
    session: DbSession,
    who: Cataloguer,
    now: Now,
    fields: Annotated[ItemFields, Form()],
) -> Response:
    item = service.get_item(session, item_id)
    errors: dict[str, str] = {}
    location = fields.location_id.strip()
    if location and not location.isdigit():
        errors["location_id"] = _("Not a location of this library.")
    change = service.ItemChange(
        status=fields.status or None,
        item_type=fields.item_type or None,
        location_id=int(location) if location.isdigit() else None,
        clear_location=not location,
        call_number=fields.call_number,
        price=fields.price.strip(),
        rfid_tag=fields.rfid_tag.strip(),
        circulates=fields.circulates == "yes",
    )
    if not errors:
        try:
            with session.begin_nested():
                service.update_item(session, who, item_id, change, at=now)
            return RedirectResponse(f"/staff/catalog/items/{item_id}?saved=1", 303)
        except ValidationFailed as exc:
            errors = {e.field: i18n.field_message(e) for e in exc.errors}
        except DuplicateValue:
            errors["rfid_tag"] = _("This value is already on another copy.")
    session.refresh(item)
    return _item_page(request, session, who, item, errors, status_code=422)
