"""Request and response models of sign-in, staff and devices."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from biblioverse.access import Role
from biblioverse.fields import DbId, Line


class TokenRequest(BaseModel):
    kind: Literal["staff", "reader"] | None = Field(
        default=None,
        description="look only among staff or only among readers; omitted, the login may be "
        "either, and a login naming both signs in the one whose password it is (ADR 0035)",
    )
    login: str = Field(
        min_length=1, max_length=254, description="staff user name, card number or e-mail"
    )
    password: str = Field(min_length=1, max_length=128)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_at: dt.datetime
    principal: PrincipalOut


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    role: Role
    org_unit_id: DbId


class PrincipalOut(BaseModel):
    kind: str
    id: int
    display_name: str
    org_unit_id: int | None
    grants: list[GrantOut]
    permissions: list[str]


class StaffIn(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    full_name: Line = Field(min_length=1, max_length=120)
    password: str = Field(max_length=128)
    home_org_unit_id: DbId
    email: str | None = Field(default=None, max_length=254)
    grants: list[GrantOut] = []


class StaffChangeIn(BaseModel):
    full_name: Line | None = Field(default=None, max_length=120)
    active: bool | None = None
    password: str | None = Field(default=None, max_length=128)


class StaffOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    email: str | None
    home_org_unit_id: DbId
    active: bool
    grants: list[GrantOut]
    created_at: dt.datetime
    last_login_at: dt.datetime | None


class DeviceIn(BaseModel):
    name: Line = Field(min_length=1, max_length=120)
    kind: str = Field(max_length=32)
    org_unit_id: DbId


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    org_unit_id: DbId
    hint: str
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    revoked_at: dt.datetime | None = Field(None, description="when it was retired")


class DeviceCreated(DeviceOut):
    key: str = Field(description="shown once; store it in the device")


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: dt.datetime
    actor_kind: str
    actor_id: int
    action: str
    entity: str
    entity_id: str
    org_unit_id: int | None
    details: dict[str, Any]
