"""The libraries' pages: the public home (every library, open or closed now) and the staff
console's list of libraries and their locations."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from biblioverse.deps import DbSession, Now
from biblioverse.libraries import service
from biblioverse.web.pages import PageActor, StaffPage, render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession, actor: PageActor, now: Now) -> HTMLResponse:
    units = service.service_points(session)
    rows = [(u, service.status_at(u, now)) for u in units]
    return render(request, "home.html", actor, libraries=rows, now=now)


@router.get("/staff/libraries", response_class=HTMLResponse)
def staff_libraries(request: Request, session: DbSession, who: StaffPage, now: Now) -> Response:
    units = service.list_units(session)
    rows = [(u, service.locations_of(session, u.id)) for u in units]
    return render(request, "staff/libraries.html", who, rows=rows, section="libraries", now=now)
