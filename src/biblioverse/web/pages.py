"""The page toolkit every context's pages use: the session and its CSRF token, who is
signed in, typed page access (``StaffPage``, ``ReaderPage``, ``staff_page(...)``), rendering
and error pages, redirects; and the few routes of the layout itself (the language switch,
the favicon). Each context's pages are in its own ``pages.py``.

Pages sign in with a signed session cookie; every form carries the session's CSRF token
(htmx sends it as a header). Handlers stay thin: they parse the form, call one service and
render a template.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar
from urllib.parse import quote, urlparse

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from biblioverse import i18n
from biblioverse.access import Actor, Permission, PrincipalKind
from biblioverse.deps import ReadSession, principals
from biblioverse.errors import PermissionDenied
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.web.templating import globals_for, templates

STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


# --- session, CSRF and the acting principal -----------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return str(token)


async def check_csrf(request: Request) -> None:
    """Every state-changing page request proves it came from our own form."""
    expected = request.session.get("csrf")
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not secrets.compare_digest(str(expected), sent):
        raise PermissionDenied(_("The form has expired. Please reload the page and try again."))


Csrf = Depends(check_csrf)


def page_actor(request: Request, session: ReadSession) -> Actor | None:
    kind, pid = request.session.get("kind"), request.session.get("id")
    if not kind or not isinstance(pid, int):
        return None
    epoch = request.session.get("epoch", 0)
    actor = principals(request).actor_for(
        session, kind, pid, epoch=epoch if isinstance(epoch, int) else -1
    )
    if actor is None:
        request.session.clear()
    return actor


def start_session(request: Request, session: Session, actor: Actor) -> None:
    """A fresh page session for who just signed in (no fixation), in their current
    sign-in epoch: a later sign-out or new password anywhere ends it. A "you are here"
    ticket stays: it is about the phone (a sign scanned before signing in), not a person."""
    here = request.session.get("here")
    request.session.clear()
    epoch = principals(request).sign_in_epoch(session, actor.kind.value, actor.id)
    request.session.update({"kind": actor.kind.value, "id": actor.id, "epoch": epoch})
    if isinstance(here, str):
        request.session["here"] = here
    csrf_token(request)


PageActor = Annotated[Actor | None, Depends(page_actor)]


def render(
    request: Request, template: str, actor: Actor | None = None, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    context = globals_for(
        request=request,
        actor=actor,
        csrf=csrf_token(request),
        path=request.url.path,
        path_qs=_path_with_query(request),
        **ctx,
    )
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    _page_headers(response, private=actor is not None)
    return response


def _path_with_query(request: Request) -> str:
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def _page_headers(response: Response, *, private: bool) -> None:
    # htmx asks the same URL for a fragment: caches (and the Back button) must keep the two
    # apart. A signed-in page holds personal data: no copy on a shared kiosk's disk.
    response.headers["Vary"] = "HX-Request, Cookie"
    if private:
        response.headers["Cache-Control"] = "no-store"


def _session_actor(request: Request) -> Actor | None:
    """Who the session says is signed in, without the database: enough for the header."""
    kind, pid = request.session.get("kind"), request.session.get("id")
    if isinstance(kind, str) and kind in {k.value for k in PrincipalKind} and isinstance(pid, int):
        return Actor(PrincipalKind(kind), pid)
    return None


# Module-level, so the catalog extractor sees them (it skips calls nested in calls).
DEFAULT_TITLE = N_("Something went wrong")
DEFAULT_MESSAGE = N_("Something went wrong on our side.")
ERROR_TITLES = {
    401: N_("Please sign in"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("Conflict"),
    422: N_("Please check your input"),
    429: N_("Too many attempts"),
    503: N_("Busy, please try again"),
}
PLAIN_MESSAGES = {
    404: N_("The page you asked for does not exist."),
    405: N_("This page cannot be used that way."),
    422: N_("Some of what was sent is not valid. Please go back and check the form."),
    503: N_("The library system is busy. Please try again in a moment."),
}


def error_page(
    request: Request, status: int, message: str | None = None, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """An error for a browser: a whole page, or a short alert when htmx asked."""
    text = message or _(PLAIN_MESSAGES.get(status, DEFAULT_MESSAGE))
    title = _(ERROR_TITLES.get(status, DEFAULT_TITLE))
    template = "_flash.html" if request.headers.get("hx-request") else "error.html"
    response = templates.TemplateResponse(
        request,
        template,
        globals_for(
            request=request,
            actor=_session_actor(request),
            csrf=request.session.get("csrf", ""),
            path=request.url.path,
            path_qs=request.url.path,
            status=status,
            title=title,
            message=text,
        ),
        status_code=status,
        headers=headers,
    )
    _page_headers(response, private=True)
    return response


def safe_next(url: str | None, default: str) -> str:
    """Only same-site paths: a sign-in link must not bounce a reader to another site."""
    if not url:
        return default
    parsed = urlparse(url)
    if parsed.scheme or parsed.netloc or not url.startswith("/") or url.startswith("//"):
        return default
    return url


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def signin_redirect(request: Request) -> RedirectResponse:
    return redirect(f"/signin?next={quote(request.url.path)}")


# --- the layout's own routes ------------------------------------------------------------


@router.get("/favicon.ico")
def favicon() -> Response:
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/lang/{code}")
def switch_language(code: str, request: Request, next: str | None = None) -> Response:
    locale = i18n.normalise(code) or i18n.DEFAULT_LOCALE
    response = redirect(safe_next(next or request.headers.get("referer-path"), "/"))
    response.set_cookie("lang", locale, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


# --- a console page's library -------------------------------------------------------------


class _Place(Protocol):
    """A library as a console page offers it (``libraries.places_for`` gives them)."""

    @property
    def id(self) -> int: ...


PlaceT = TypeVar("PlaceT", bound=_Place)


def chosen_of(places: Sequence[PlaceT], library: str) -> PlaceT | None:
    """The library asked for (by id, as the query string has it), else the first."""
    return next((u for u in places if str(u.id) == library), places[0] if places else None)


# --- typed page access ---------------------------------------------------------------


class SignInFirst(Exception):
    """A page for signed-in people, asked by someone who is not: the app answers with the
    sign-in page (``json``: a 401, for a file a script asked for)."""

    def __init__(self, *, json: bool = False) -> None:
        super().__init__("sign in first")
        self.json = json


class PageForbidden(Exception):
    """Signed in, but this page is not for them: the app answers with a 403 page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def staff_page(
    permission: Permission | None = None, refusal: str = ""
) -> Callable[[Actor | None], Awaitable[Actor]]:
    """A page dependency: signed-in staff whose roles include ``permission`` somewhere (the
    page's service then checks the library); else the sign-in page, or a page saying
    ``refusal`` (marked with N_, translated when it is said)."""

    async def dependency(actor: PageActor) -> Actor:
        if actor is None:
            raise SignInFirst()
        if not actor.is_staff:
            raise PageForbidden(_("The staff console is for library staff."))
        if permission is not None and not actor.can(permission):
            raise PageForbidden(_(refusal))
        return actor

    return dependency


async def reader_page(actor: PageActor) -> Actor:
    if actor is None or not actor.is_reader:
        raise SignInFirst()
    return actor


async def reader_file(actor: PageActor) -> Actor:
    if actor is None or not actor.is_reader:
        raise SignInFirst(json=True)
    return actor


# Who may open a page: each handler names one, and the app answers a refusal.
StaffPage = Annotated[Actor, Depends(staff_page())]
ReaderPage = Annotated[Actor, Depends(reader_page)]
ReaderFile = Annotated[Actor, Depends(reader_file)]


def api_docs_page() -> HTMLResponse:
    html = (STATIC_DIR / "swagger.html").read_text()
    return HTMLResponse(html)
