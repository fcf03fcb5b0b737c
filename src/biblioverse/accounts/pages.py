"""The accounts' pages: signing in and out, the staff console's home (one's roles, and
the reader cards of one's libraries), the audit log, and a reader's settings form, whose
changes may need the current password (as ``PATCH /api/v1/readers/me``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from biblioverse import audit, i18n, libraries, readers
from biblioverse.access import Actor, Permission, PrincipalKind
from biblioverse.accounts import service
from biblioverse.accounts.api import LoginPolicy
from biblioverse.deps import DbSession, Now, client_address
from biblioverse.errors import DomainError, DuplicateValue, Throttled, ValidationFailed
from biblioverse.i18n import N_
from biblioverse.i18n import gettext as _
from biblioverse.readers.pages import settings_values
from biblioverse.web.pages import (
    Csrf,
    PageActor,
    ReaderPage,
    StaffPage,
    redirect,
    render,
    safe_next,
    staff_page,
    start_session,
)

router = APIRouter(include_in_schema=False)


# --- signing in and out ----------------------------------------------------------------


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, actor: PageActor, next: str | None = None) -> Response:
    if actor is not None:
        return redirect("/staff" if actor.is_staff else "/account")
    return render(request, "signin.html", None, next=safe_next(next, ""), error=None)


@router.post("/signin", response_class=HTMLResponse, dependencies=[Csrf])
def signin(
    request: Request,
    session: DbSession,
    now: Now,
    policy: LoginPolicy,
    login: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    """One field finds the person: a staff user name, a card number or an e-mail."""
    try:
        with service.failures_kept(session):
            actor = service.authenticate(
                session,
                login=login,
                secret=password,
                address=client_address(request),
                at=now,
                policy=policy,
            )
    except Throttled as exc:
        minutes = max(1, exc.retry_after_s // 60)
        msg = _("Too many failed attempts. Please wait %(minutes)s minutes.") % {"minutes": minutes}
        return render(request, "signin.html", None, 429, next=next, error=msg, login=login)
    except DomainError:
        msg = _("Wrong card number, e-mail, user name or password.")
        return render(request, "signin.html", None, 401, next=next, error=msg, login=login)
    start_session(request, session, actor)
    default = "/staff" if actor.is_staff else "/account"
    return redirect(safe_next(next, default))


@router.post("/signout", dependencies=[Csrf])
def signout(request: Request, session: DbSession, actor: PageActor, now: Now) -> Response:
    if actor is not None:
        service.sign_out(session, actor, at=now)
    request.session.clear()
    return redirect("/")


# --- a reader's settings -----------------------------------------------------------------


class SettingsForm(BaseModel):
    email: str = Field(default="", max_length=500)
    phone: str = Field(default="", max_length=100)
    preferred_locale: str = Field(default="", max_length=20)
    keep_history: str | None = Field(default=None, max_length=10)
    current_password: str = Field(default="", max_length=128)


@router.post("/account/settings", response_class=HTMLResponse, dependencies=[Csrf])
def account_settings(
    request: Request,
    session: DbSession,
    actor: ReaderPage,
    now: Now,
    policy: LoginPolicy,
    form: Annotated[SettingsForm, Form()],
) -> Response:
    change = readers.OwnChange(
        keep_history=form.keep_history == "on",
        phone=form.phone,
        email=form.email,
        preferred_locale=i18n.normalise(form.preferred_locale) or None,
    )
    errors: dict[str, str] = {}
    try:
        with service.failures_kept(session):
            service.change_own_account(
                session,
                actor,
                change,
                current_password=form.current_password,
                address=client_address(request),
                policy=policy,
                keep_token=None,
                at=now,
            )
    except ValidationFailed as exc:
        errors = {e.field: i18n.field_message(e) for e in exc.errors}
    except DuplicateValue:
        errors = {"email": _("This e-mail address is already registered.")}
    except Throttled:
        errors = {"current_password": _("Too many wrong passwords. Please wait and try again.")}
    reader = readers.get(session, actor.id)
    # After an error the form shows what the reader typed, not what is stored.
    values = (
        settings_values(reader)
        if not errors
        else {
            "email": form.email,
            "phone": form.phone,
            "preferred_locale": form.preferred_locale,
            "keep_history": "on" if form.keep_history == "on" else "",
        }
    )
    return render(
        request,
        "_settings_form.html",
        actor,
        reader=reader,
        saved=not errors,
        errors=errors,
        values=values,
        status_code=200 if not errors else 422,
    )


# --- staff console: home and the audit log -------------------------------------------------

Auditor = Annotated[
    Actor,
    Depends(staff_page(Permission.AUDIT_READ, N_("Your role does not include the audit log."))),
]


def _scope_names(session: Session, actor: Actor) -> list[tuple[str, str]]:
    names = []
    for g in actor.grants:
        unit = libraries.get_unit(session, g.org_unit_id)
        names.append((g.role.value, unit.name(i18n.get_locale())))
    return names


@router.get("/staff", response_class=HTMLResponse)
def staff_home(request: Request, session: DbSession, who: StaffPage, now: Now) -> Response:
    return render(
        request,
        "staff/console.html",
        who,
        grants=_scope_names(session, who),
        counts=readers.status_counts(session, who),
        section="home",
    )


@router.get("/staff/audit", response_class=HTMLResponse)
def staff_audit(request: Request, session: DbSession, who: Auditor) -> Response:
    unit_ids = libraries.units_within(session, who.scopes_for(Permission.AUDIT_READ))
    rows = audit.entries(session, unit_ids=unit_ids, limit=200)
    staff_ids = {e.actor_id for e in rows if e.actor_kind == PrincipalKind.STAFF}
    return render(
        request,
        "staff/audit.html",
        who,
        rows=rows,
        staff_names=service.staff_names(session, staff_ids),
        section="audit",
    )
