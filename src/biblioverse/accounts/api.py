"""HTTP API of sign-in, staff accounts, devices and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from biblioverse import audit, libraries, readers
from biblioverse.access import ROLE_PERMISSIONS, Actor, Permission, PrincipalKind
from biblioverse.accounts import service
from biblioverse.accounts.models import StaffUser
from biblioverse.accounts.schemas import (
    AuditOut,
    DeviceCreated,
    DeviceIn,
    DeviceOut,
    GrantOut,
    PrincipalOut,
    StaffChangeIn,
    StaffIn,
    StaffOut,
    TokenOut,
    TokenRequest,
)
from biblioverse.deps import (
    AppSettings,
    CurrentActor,
    CurrentDevice,
    CurrentReader,
    DbSession,
    Now,
    bearer_token,
    client_address,
    require_permission,
)
from biblioverse.fields import DbId

router = APIRouter(tags=["accounts"])
StaffManager = Annotated[Actor, Depends(require_permission(Permission.STAFF_MANAGE))]
DeviceManager = Annotated[Actor, Depends(require_permission(Permission.DEVICES_MANAGE))]
Auditor = Annotated[Actor, Depends(require_permission(Permission.AUDIT_READ))]


async def throttle_policy(settings: AppSettings) -> service.ThrottlePolicy:
    return service.ThrottlePolicy(
        window_s=settings.throttle_window_s,
        account_failures=settings.throttle_account_failures,
        address_failures=settings.throttle_address_failures,
    )


LoginPolicy = Annotated[service.ThrottlePolicy, Depends(throttle_policy)]


def principal_out(actor: Actor) -> PrincipalOut:
    perms = sorted({p.value for g in actor.grants for p in ROLE_PERMISSIONS[g.role]})
    return PrincipalOut(
        kind=actor.kind.value,
        id=actor.id,
        display_name=actor.display_name,
        org_unit_id=actor.org_unit_id,
        grants=[GrantOut(role=g.role, org_unit_id=g.org_unit_id) for g in actor.grants],
        permissions=perms,
    )


@router.post(
    "/auth/token",
    summary="Sign in (staff or reader) and get a bearer token",
    description="`login` is a staff user name, a reader's card number or a reader's e-mail; "
    "an unknown login and a wrong password get the same answer.",
)
def token(
    body: TokenRequest,
    request: Request,
    session: DbSession,
    now: Now,
    settings: AppSettings,
    policy: LoginPolicy,
) -> TokenOut:
    with service.failures_kept(session):
        actor = service.authenticate(
            session,
            kind=PrincipalKind(body.kind) if body.kind else None,
            login=body.login,
            secret=body.password,
            address=client_address(request),
            at=now,
            policy=policy,
        )
    value, expires = service.issue_token(session, actor, at=now, ttl_s=settings.api_token_ttl_s)
    return TokenOut(access_token=value, expires_at=expires, principal=principal_out(actor))


@router.delete(
    "/auth/token",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out: this token and every other session and token of the same person end",
)
def revoke(actor: CurrentActor, session: DbSession, now: Now) -> Response:
    service.sign_out(session, actor, at=now)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/readers/me",
    tags=["readers"],
    summary="Change one's own contact details, privacy, password or PIN",
    description="A new password, PIN or e-mail address needs `current_password`; a new "
    "password or PIN signs the reader out everywhere but this token.",
)
def change_me(
    body: readers.OwnChangeIn,
    request: Request,
    actor: CurrentReader,
    session: DbSession,
    now: Now,
    policy: LoginPolicy,
) -> readers.ReaderOut:
    change = readers.OwnChange(**body.model_dump(exclude_unset=True, exclude={"current_password"}))
    with service.failures_kept(session):
        done = service.change_own_account(
            session,
            actor,
            change,
            current_password=body.current_password,
            address=client_address(request),
            policy=policy,
            keep_token=bearer_token(request),
            at=now,
        )
    return readers.ReaderOut.of(done.reader, readers.local_today(now))


@router.get("/me", summary="Who am I, and what may I do")
def me(actor: CurrentActor) -> PrincipalOut:
    return principal_out(actor)


def _staff_out(staff: StaffUser) -> StaffOut:
    return StaffOut.model_validate(staff)


@router.get("/staff", summary="Staff of the libraries in the caller's scope")
def list_staff(actor: StaffManager, session: DbSession) -> list[StaffOut]:
    return [_staff_out(s) for s in service.list_staff(session, actor)]


@router.post("/staff", status_code=status.HTTP_201_CREATED)
def create_staff(body: StaffIn, actor: StaffManager, session: DbSession, now: Now) -> StaffOut:
    staff = service.create_staff(
        session,
        actor,
        username=body.username,
        full_name=body.full_name,
        password=body.password,
        home_org_unit_id=body.home_org_unit_id,
        email=body.email,
        roles=[(g.role, g.org_unit_id) for g in body.grants],
        at=now,
    )
    return _staff_out(staff)


@router.get("/staff/{staff_id}")
def get_staff(staff_id: DbId, actor: CurrentActor, session: DbSession) -> StaffOut:
    return _staff_out(service.visible_staff(session, actor, staff_id))


@router.patch("/staff/{staff_id}", summary="Rename, disable or reset the password of staff")
def change_staff(
    staff_id: DbId, body: StaffChangeIn, actor: StaffManager, session: DbSession, now: Now
) -> StaffOut:
    staff = service.change_staff(
        session, actor, staff_id, **body.model_dump(exclude_unset=True), at=now
    )
    return _staff_out(staff)


@router.post("/staff/{staff_id}/grants", status_code=status.HTTP_201_CREATED)
def grant(
    staff_id: DbId, body: GrantOut, actor: StaffManager, session: DbSession, now: Now
) -> StaffOut:
    service.grant_role(session, actor, staff_id, body.role, body.org_unit_id, at=now)
    return _staff_out(service.get_staff(session, staff_id))


@router.delete("/staff/{staff_id}/grants", summary="Take a role back")
def revoke_grant(
    staff_id: DbId, body: GrantOut, actor: StaffManager, session: DbSession, now: Now
) -> StaffOut:
    service.revoke_role(session, actor, staff_id, body.role, body.org_unit_id, at=now)
    return _staff_out(service.get_staff(session, staff_id))


@router.post("/devices", status_code=status.HTTP_201_CREATED, summary="Register a device key")
def create_device(
    body: DeviceIn, actor: DeviceManager, session: DbSession, now: Now
) -> DeviceCreated:
    device, key = service.create_device_key(
        session, actor, name=body.name, kind=body.kind, org_unit_id=body.org_unit_id, at=now
    )
    return DeviceCreated(**DeviceOut.model_validate(device).model_dump(), key=key)


@router.post(
    "/devices/{device_id}/key",
    summary="A new key for a device; the old one is refused at once",
)
def rotate_device(
    device_id: DbId, actor: DeviceManager, session: DbSession, now: Now
) -> DeviceCreated:
    device, key = service.rotate_device_key(session, actor, device_id, at=now)
    return DeviceCreated(**DeviceOut.model_validate(device).model_dump(), key=key)


@router.post("/devices/{device_id}/retire", summary="Retire a device: its key is refused")
def retire_device(device_id: DbId, actor: DeviceManager, session: DbSession, now: Now) -> DeviceOut:
    return DeviceOut.model_validate(service.retire_device_key(session, actor, device_id, at=now))


@router.get("/devices/me", summary="A device checks its key")
def device_me(actor: CurrentDevice) -> PrincipalOut:
    return principal_out(actor)


@router.get("/audit", summary="Staff actions in the caller's scope, newest first")
def audit_log(
    actor: Auditor,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: DbId | None = None,
) -> list[AuditOut]:
    unit_ids = libraries.units_within(session, actor.scopes_for(Permission.AUDIT_READ))
    rows = audit.entries(session, unit_ids=unit_ids, limit=limit, before_id=before_id)
    return [AuditOut.model_validate(r) for r in rows]
