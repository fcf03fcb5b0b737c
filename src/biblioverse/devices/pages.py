"""The console's devices page: every device of every kind in the admin's libraries (SIP2
kiosks, pads and sorters, shelf readers, gates, sensors) with its status, last seen time
and errors; registering one (its key shown once), a new key, retiring one."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from biblioverse import accounts, i18n, libraries
from biblioverse.access import Actor, DeviceKind, Permission
from biblioverse.deps import AppSettings, DbSession, Now, ReadSession
from biblioverse.devices import service
from biblioverse.errors import NotFound, PermissionDenied, ValidationFailed
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.settings import Settings
from biblioverse.web.pages import Csrf, error_page, redirect, render, staff_page

router = APIRouter(include_in_schema=False)

DeviceManager = Annotated[
    Actor, Depends(staff_page(Permission.DEVICES_MANAGE, N_("Your role does not include devices.")))
]

KIND_WORDS = {
    DeviceKind.KIOSK.value: N_("Self-service kiosk"),
    DeviceKind.PAD.value: N_("RFID staff pad"),
    DeviceKind.SORTER.value: N_("Return sorter"),
    DeviceKind.GATE.value: N_("Security gate"),
    DeviceKind.SHELF.value: N_("Smart shelf reader"),
    DeviceKind.SENSOR.value: N_("Building sensor"),
    DeviceKind.ROBOT.value: N_("Robot"),
    DeviceKind.SCREEN.value: N_("Screen"),
}
STATUS_WORDS = {
    service.Status.ONLINE.value: N_("online"),
    service.Status.SILENT.value: N_("silent"),
    service.Status.NEVER.value: N_("never seen"),
    service.Status.RETIRED.value: N_("retired"),
}


def _lines(
    request: Request,
    session: Session,
    who: Actor,
    settings: Settings,
    now: dt.datetime,
    device_id: int | None = None,
) -> list[service.Line]:
    return service.registry(
        session,
        who,
        at=now,
        silent_after=dt.timedelta(seconds=settings.device_offline_s),
        sources=getattr(request.app.state, "device_details", ()),
        device_id=device_id,
    )


def _render(
    request: Request, template: str, who: Actor, status: int = 200, **ctx: object
) -> Response:
    return render(
        request,
        template,
        who,
        status,
        kind_words=KIND_WORDS,
        status_words=STATUS_WORDS,
        section="devices",
        **ctx,
    )


@router.get("/staff/devices", response_class=HTMLResponse)
def devices_page(
    request: Request,
    session: ReadSession,
    who: DeviceManager,
    settings: AppSettings,
    now: Now,
    saved: int = 0,
) -> Response:
    return _render(
        request,
        "staff/devices.html",
        who,
        lines=_lines(request, session, who, settings, now),
        saved=saved,
    )


def _places(session: DbSession, who: Actor) -> list[libraries.OrgUnit]:
    return [
        u
        for u in libraries.list_units(session)
        if who.can(Permission.DEVICES_MANAGE, u.path)
        and u.kind != libraries.OrgKind.CONSORTIUM.value
    ]


def _new_form(
    request: Request,
    session: DbSession,
    who: Actor,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return _render(
        request,
        "staff/device_new.html",
        who,
        status,
        values=values,
        errors=errors or {},
        places=_places(session, who),
        kinds=accounts.DEVICE_KINDS,
    )


@router.get("/staff/devices/keys/new", response_class=HTMLResponse)
def new_device_key(request: Request, session: DbSession, who: DeviceManager) -> Response:
    return _new_form(request, session, who, {"kind": DeviceKind.GATE.value})


@router.post("/staff/devices/keys/new", response_class=HTMLResponse, dependencies=[Csrf])
async def add_device_key(
    request: Request, session: DbSession, who: DeviceManager, settings: AppSettings, now: Now
) -> Response:
    form = await request.form()
    values = {k: str(v)[:200] for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    unit = values.get("org_unit_id", "")
    if not unit.isdigit() or len(unit) > 12:
        return _new_form(
            request, session, who, values, {"org_unit_id": _("Choose a library.")}, 422
        )
    problems: dict[str, str]
    status = 422
    try:
        with session.begin_nested():
            device, key = accounts.create_device_key(
                session,
                who,
                name=values.get("name", "")[:120],
                kind=values.get("kind", ""),
                org_unit_id=int(unit),
                at=now,
            )
        line = _lines(request, session, who, settings, now, device.id)[0]
        return _render(request, "staff/device_key.html", who, 201, line=line, key=key)
    except ValidationFailed as exc:
        problems = {e.field: i18n.field_message(e) for e in exc.errors}
    except NotFound:
        problems = {"org_unit_id": _("Choose a library.")}
    except PermissionDenied:
        problems = {"org_unit_id": _("Your role does not include devices of this library.")}
        status = 403
    return _new_form(request, session, who, values, problems, status)


def _line(
    request: Request,
    session: Session,
    who: Actor,
    settings: Settings,
    now: dt.datetime,
    device_id: int,
) -> service.Line | Response:
    """The device, or the page saying there is none (of the actor's libraries)."""
    try:
        return _lines(request, session, who, settings, now, device_id)[0]
    except accounts.DeviceNotFound:
        return error_page(request, 404, _("No such device."))


@router.get("/staff/devices/keys/{device_id}", response_class=HTMLResponse)
def device_key_page(
    request: Request,
    device_id: DbId,
    session: ReadSession,
    who: DeviceManager,
    settings: AppSettings,
    now: Now,
    done: str = "",
) -> Response:
    line = _line(request, session, who, settings, now, device_id)
    if isinstance(line, Response):
        return line
    return _render(request, "staff/device_key.html", who, line=line, done=done[:20])


@router.post(
    "/staff/devices/keys/{device_id}/rotate", response_class=HTMLResponse, dependencies=[Csrf]
)
def rotate_device_key(
    request: Request,
    device_id: DbId,
    session: DbSession,
    who: DeviceManager,
    settings: AppSettings,
    now: Now,
) -> Response:
    try:
        _row, key = accounts.rotate_device_key(session, who, device_id, at=now)
    except accounts.DeviceNotFound:
        return error_page(request, 404, _("No such device."))
    except accounts.DeviceRetired:
        return redirect(f"/staff/devices/keys/{device_id}?done=retired")
    line = _lines(request, session, who, settings, now, device_id)[0]
    return _render(request, "staff/device_key.html", who, line=line, key=key, rotated=True)


@router.get("/staff/devices/keys/{device_id}/retire", response_class=HTMLResponse)
def retire_device_confirm(
    request: Request,
    device_id: DbId,
    session: ReadSession,
    who: DeviceManager,
    settings: AppSettings,
    now: Now,
) -> Response:
    line = _line(request, session, who, settings, now, device_id)
    if isinstance(line, Response):
        return line
    return _render(request, "staff/device_retire.html", who, line=line)


@router.post(
    "/staff/devices/keys/{device_id}/retire", response_class=HTMLResponse, dependencies=[Csrf]
)
async def retire_device_key(
    request: Request, device_id: DbId, session: DbSession, who: DeviceManager, now: Now
) -> Response:
    form = await request.form()
    if form.get("confirm") != "retire":  # only from the confirmation page
        return redirect(f"/staff/devices/keys/{device_id}/retire")
    try:
        accounts.retire_device_key(session, who, device_id, at=now)
    except accounts.DeviceNotFound:
        return error_page(request, 404, _("No such device."))
    except accounts.DeviceRetired:
        pass  # retired already: the page says so
    return redirect(f"/staff/devices/keys/{device_id}?done=retired")
