"""Live pages of the staff console for the building: zones, their readings, open alarms to
acknowledge and resolve. The live part is a fragment the page asks for again every few
seconds."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from biblioverse import libraries
from biblioverse.access import Actor, Permission
from biblioverse.building import service as building
from biblioverse.building.rules import METRICS, Metric
from biblioverse.deps import DbSession, Now
from biblioverse.fields import DbId
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.web.pages import (
    Csrf,
    PageActor,
    chosen_of,
    render,
    staff_page,
)

router = APIRouter(include_in_schema=False)

METRIC_NAMES = {
    "temperature": N_("Temperature"),
    "humidity": N_("Humidity"),
    "co2": N_("CO₂"),
    "noise": N_("Noise"),
    "people": N_("People"),
    "seat": N_("Seats taken"),
}
ALARM_KINDS = {
    "threshold": N_("Out of range"),
    "offline": N_("Device silent"),
    "gate": N_("Gate alarm"),
}
ALARM_STATES = {
    "raised": N_("Raised"),
    "acknowledged": N_("Acknowledged"),
    "resolved": N_("Resolved"),
}


BuildingWatcher = Annotated[
    Actor,
    Depends(staff_page(Permission.BUILDING_WATCH, N_("Your role does not include the building."))),
]


def _building_live(
    session: DbSession, who: Actor, unit_id: int, now: dt.datetime
) -> dict[str, Any]:
    zones = building.zones_of(session, who, unit_id, at=now)
    elsewhere = building.unzoned_alarms(session, who, unit_id)
    return {
        "zones": zones,
        "elsewhere": elsewhere,
        "copies": building.alarm_copies(
            session, [*elsewhere, *(a for z in zones for a in z.alarms)]
        ),
        "units": {m.value: METRICS[m].unit for m in Metric},
        "metric_names": METRIC_NAMES,
        "alarm_kinds": ALARM_KINDS,
        "alarm_states": ALARM_STATES,
    }


@router.get("/staff/building", response_class=HTMLResponse)
def building_page(
    request: Request, session: DbSession, who: BuildingWatcher, now: Now, library: str = ""
) -> Response:
    places = libraries.places_for(session, who, Permission.BUILDING_WATCH)
    chosen = chosen_of(places, library)
    ctx = _building_live(session, who, chosen.id, now) if chosen is not None else {}
    return render(
        request,
        "staff/building.html",
        who,
        places=places,
        chosen=chosen,
        section="building",
        **ctx,
    )


@router.get("/staff/building/live", response_class=HTMLResponse)
def building_live(
    request: Request, session: DbSession, who: BuildingWatcher, now: Now, library: str = ""
) -> Response:
    chosen = chosen_of(libraries.places_for(session, who, Permission.BUILDING_WATCH), library)
    if chosen is None:
        return Response(status_code=204)
    return render(
        request,
        "staff/_building_live.html",
        who,
        chosen=chosen,
        **_building_live(session, who, chosen.id, now),
    )


@router.get("/staff/alarms/badge", response_class=HTMLResponse)
def alarm_badge(request: Request, session: DbSession, actor: PageActor) -> Response:
    """The console's notice of alarms a linkage rule asked staff to see."""
    if actor is None or not actor.is_staff or not actor.can(Permission.BUILDING_WATCH):
        return HTMLResponse("")
    n = building.to_notify(session, actor)
    if not n:
        return HTMLResponse("")
    label = _("%(n)s alarms to acknowledge") % {"n": n}
    return HTMLResponse(
        f'<a class="badge badge-blocked" href="/staff/building" aria-label="{label}">{n}</a>'
    )


@router.post("/staff/alarms/{alarm_id}/{step}", dependencies=[Csrf])
async def change_alarm(
    request: Request, alarm_id: DbId, step: str, session: DbSession, who: BuildingWatcher, now: Now
) -> Response:
    form = await request.form()
    note = str(form.get("note", ""))[:300]
    if step == "acknowledge":
        alarm = building.acknowledge(session, who, alarm_id, at=now)
    elif step == "resolve":
        alarm = building.resolve(session, who, alarm_id, note=note, at=now)
    else:
        return Response(status_code=404)
    if request.headers.get("HX-Request"):
        return building_live(request, session, who, now, library=str(alarm.org_unit_id))
    return RedirectResponse(f"/staff/building?library={alarm.org_unit_id}", status_code=303)
