"""SIP2 accounts in the staff console: the logins of kiosks, pads and sorters, each with
its counts and a live log of its last messages. The list of every device is devices'."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from biblioverse import i18n, libraries
from biblioverse.access import Actor, Permission
from biblioverse.deps import DbSession, Now
from biblioverse.errors import DuplicateValue, PermissionDenied, ValidationFailed
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.sip2 import service
from biblioverse.sip2.errors import Sip2AccountNotFound
from biblioverse.sip2.models import CHARSETS
from biblioverse.web.pages import (
    Csrf,
    error_page,
    render,
    staff_page,
)

router = APIRouter(include_in_schema=False)
FORM_FIELDS = ("name", "kind", "login", "password", "org_unit_id", "location", "charset", "locale")


DeviceManager = Annotated[
    Actor, Depends(staff_page(Permission.DEVICES_MANAGE, N_("Your role does not include devices.")))
]


def _values(line: service.Sip2Line | None) -> dict[str, str]:
    if line is None:
        return {"kind": "kiosk", "charset": "utf-8", "locale": "en", "enabled": "on"}
    a, d = line.account, line.device
    return {
        "name": d.name,
        "kind": d.kind,
        "login": a.login,
        "org_unit_id": str(d.org_unit_id),
        "location": a.location,
        "charset": a.charset,
        "locale": a.locale,
        "error_detection": "on" if a.error_detection else "",
        "enabled": "on" if a.enabled else "",
    }


def _form(
    request: Request,
    session: DbSession,
    who: Actor,
    line: service.Sip2Line | None,
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    key: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "staff/device_edit.html",
        who,
        status_code,
        line=line,
        values=values,
        errors=errors or {},
        key=key,
        places=[
            u
            for u in libraries.list_units(session)
            if who.can(Permission.DEVICES_MANAGE, u.path)
            and u.kind != libraries.OrgKind.CONSORTIUM.value
        ],
        kinds=service.SIP2_KINDS,
        charsets=CHARSETS,
        locales=i18n.LOCALES,
        section="devices",
    )


@router.get("/staff/devices/new", response_class=HTMLResponse)
def new_device(request: Request, session: DbSession, who: DeviceManager) -> Response:
    return _form(request, session, who, None, _values(None))


def _line(
    request: Request, session: DbSession, who: Actor, account_id: int
) -> service.Sip2Line | Response:
    """The device, or the page saying there is none (of the actor's libraries)."""
    try:
        return service.get_sip2_account(session, who, account_id)
    except Sip2AccountNotFound:
        return error_page(request, 404, _("No such device."))


@router.get("/staff/devices/{account_id}", response_class=HTMLResponse)
def edit_device(
    request: Request, account_id: DbId, session: DbSession, who: DeviceManager
) -> Response:
    line = _line(request, session, who, account_id)
    if isinstance(line, Response):
        return line
    return _form(request, session, who, line, _values(line))


@router.get("/staff/devices/{account_id}/log", response_class=HTMLResponse)
def device_log(
    request: Request, account_id: DbId, session: DbSession, who: DeviceManager
) -> Response:
    """The live part of the device page (polled): counts, last seen and the newest lines."""
    line = _line(request, session, who, account_id)
    if isinstance(line, Response):
        return line
    return render(
        request,
        "staff/_device_log.html",
        who,
        line=line,
        log=service.log_of(session, who, account_id, limit=50),
    )


@router.post("/staff/devices/new", response_class=HTMLResponse, dependencies=[Csrf])
async def add_device(
    request: Request, session: DbSession, who: DeviceManager, now: Now
) -> Response:
    return await _save(request, session, who, now, None)


@router.post("/staff/devices/{account_id}", response_class=HTMLResponse, dependencies=[Csrf])
async def change_device(
    request: Request, account_id: DbId, session: DbSession, who: DeviceManager, now: Now
) -> Response:
    return await _save(request, session, who, now, account_id)


async def _save(
    request: Request,
    session: DbSession,
    who: Actor,
    now: dt.datetime,
    account_id: int | None,
) -> Response:
    line = _line(request, session, who, account_id) if account_id is not None else None
    if isinstance(line, Response):
        return line
    form = await request.form()
    values = {k: str(v)[:200] for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    unit = values.get("org_unit_id", "")
    if not unit.isdigit():
        shown = {k: v for k, v in values.items() if k != "password"}
        return _form(
            request,
            session,
            who,
            line,
            shown,
            errors={"org_unit_id": _("Choose a library.")},
            status_code=422,
        )
    data = service.Sip2AccountInput(
        name=values.get("name", ""),
        login=values.get("login", ""),
        org_unit_id=int(unit),
        password=values.get("password") or None,
        kind=values.get("kind", ""),
        location=values.get("location", ""),
        charset=values.get("charset", ""),
        error_detection=values.get("error_detection") == "on",
        locale=values.get("locale", ""),
        enabled=values.get("enabled") == "on",
    )
    problems: dict[str, str]
    status = 422
    try:
        with session.begin_nested():
            if account_id is None:
                account, key = service.create_sip2_account(session, who, data, at=now)
                fresh = service.get_sip2_account(session, who, account.id)
                return _form(request, session, who, fresh, _values(fresh), key=key, status_code=201)
            service.update_sip2_account(session, who, account_id, data, at=now)
        return RedirectResponse(f"/staff/devices?saved={account_id}", status_code=303)
    except ValidationFailed as exc:
        problems = {e.field: i18n.field_message(e) for e in exc.errors}
    except DuplicateValue:
        problems = {"login": _("Another device has this login.")}
    except PermissionDenied:
        problems = {"org_unit_id": _("Your role does not include devices of this library.")}
        status = 403
    shown = {k: v for k, v in values.items() if k != "password"}
    return _form(request, session, who, line, shown, errors=problems, status_code=status)
