"""Who is acting, and what their roles allow where. Pure: no I/O, no frameworks.

Staff roles are granted on an org unit and hold for every unit below it: a librarian of
the central library also serves its branches. Readers and devices are principals too, but
carry no staff roles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    LIBRARIAN = "librarian"
    CATALOGUER = "cataloguer"
    CIRCULATION = "circulation"


class Permission(StrEnum):
    ORG_MANAGE = "org.manage"
    STAFF_MANAGE = "staff.manage"
    READERS_READ = "readers.read"
    READERS_MANAGE = "readers.manage"
    CATALOG_MANAGE = "catalog.manage"
    CIRCULATION_OPERATE = "circulation.operate"
    CIRCULATION_RULES = "circulation.rules"
    CIRCULATION_OVERRIDE = "circulation.override"  # lend past a refusal, audited
    FEES_WAIVE = "fees.waive"
    AUDIT_READ = "audit.read"
    DEVICES_MANAGE = "devices.manage"
    BUILDING_WATCH = "building.watch"  # zones, readings and alarms; acknowledge, resolve
    BUILDING_MANAGE = "building.manage"  # the ranges a zone's readings must stay in
    PLANS_MANAGE = "plans.manage"  # the floor plan: rooms, shelves, points of interest


ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.LIBRARIAN: frozenset(
        {
            Permission.STAFF_MANAGE,
            Permission.READERS_READ,
            Permission.READERS_MANAGE,
            Permission.CATALOG_MANAGE,
            Permission.CIRCULATION_OPERATE,
            Permission.CIRCULATION_RULES,
            Permission.CIRCULATION_OVERRIDE,
            Permission.FEES_WAIVE,
            Permission.AUDIT_READ,
            Permission.BUILDING_WATCH,
            Permission.BUILDING_MANAGE,
            Permission.PLANS_MANAGE,
        }
    ),
    Role.CATALOGUER: frozenset({Permission.CATALOG_MANAGE}),
    Role.CIRCULATION: frozenset(
        {
            Permission.READERS_READ,
            Permission.READERS_MANAGE,
            Permission.CIRCULATION_OPERATE,
            Permission.BUILDING_WATCH,  # the desk answers the gate and the alarms
        }
    ),
}

# A librarian may hand out the roles below their own, never admin.
GRANTABLE_BY: Mapping[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset(Role),
    Role.LIBRARIAN: frozenset({Role.LIBRARIAN, Role.CATALOGUER, Role.CIRCULATION}),
    Role.CATALOGUER: frozenset(),
    Role.CIRCULATION: frozenset(),
}


class DeviceKind(StrEnum):
    KIOSK = "kiosk"  # a self-service machine: lends, takes back, renews over SIP2
    PAD = "pad"  # a staff RFID pad at a desk, over SIP2
    GATE = "gate"
    SHELF = "shelf"  # a smart shelf's RFID reader
    SORTER = "sorter"  # an automated return: takes back over SIP2
    SENSOR = "sensor"
    ROBOT = "robot"
    SCREEN = "screen"


class DeviceCapability(StrEnum):
    """What a device's key lets it do. A device does what its kind needs and nothing else."""

    HEARTBEAT = "heartbeat"  # say it is alive, check its own key
    SIP2 = "sip2"  # circulation for the reader whose card and PIN it checked
    SHELF_TAGS = "shelf.tags"  # post tag reads from its antennas
    SENSOR_READINGS = "sensor.readings"
    GATE_CHECK = "gate.check"


DEVICE_CAPABILITIES: Mapping[DeviceKind, frozenset[DeviceCapability]] = {
    DeviceKind.KIOSK: frozenset({DeviceCapability.HEARTBEAT, DeviceCapability.SIP2}),
    DeviceKind.SORTER: frozenset({DeviceCapability.HEARTBEAT, DeviceCapability.SIP2}),
    DeviceKind.PAD: frozenset({DeviceCapability.HEARTBEAT, DeviceCapability.SIP2}),
    DeviceKind.GATE: frozenset({DeviceCapability.HEARTBEAT, DeviceCapability.GATE_CHECK}),
    DeviceKind.SHELF: frozenset({DeviceCapability.HEARTBEAT, DeviceCapability.SHELF_TAGS}),
    DeviceKind.SENSOR: frozenset({DeviceCapability.HEARTBEAT, DeviceCapability.SENSOR_READINGS}),
    DeviceKind.ROBOT: frozenset({DeviceCapability.HEARTBEAT}),
    DeviceKind.SCREEN: frozenset({DeviceCapability.HEARTBEAT}),
}


class PrincipalKind(StrEnum):
    STAFF = "staff"
    READER = "reader"
    DEVICE = "device"


@dataclass(frozen=True)
class Grant:
    role: Role
    scope_path: str  # materialised path of the org unit the role was granted on
    org_unit_id: int


@dataclass(frozen=True)
class Actor:
    kind: PrincipalKind
    id: int
    display_name: str = ""
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    org_unit_id: int | None = None  # a reader's home library, a device's branch
    device_kind: DeviceKind | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind is PrincipalKind.STAFF

    @property
    def is_reader(self) -> bool:
        return self.kind is PrincipalKind.READER

    @property
    def is_device(self) -> bool:
        return self.kind is PrincipalKind.DEVICE

    def device_may(self, capability: DeviceCapability) -> bool:
        """A device whose kind has ``capability``; never a person."""
        kind = self.device_kind
        return self.is_device and kind is not None and capability in DEVICE_CAPABILITIES[kind]

    def acts_for_readers(self) -> bool:
        """A person, or a self-service machine acting for the reader it identified: the
        principals that circulation's services serve. Other devices never are."""
        return not self.is_device or self.device_may(DeviceCapability.SIP2)

    def roles(self) -> set[Role]:
        return {g.role for g in self.grants}

    def scopes_for(self, permission: Permission) -> list[str]:
        """Paths below which the actor holds ``permission``."""
        return [g.scope_path for g in self.grants if permission in ROLE_PERMISSIONS[g.role]]

    def can(self, permission: Permission, target_path: str | None = None) -> bool:
        """Anywhere (``target_path`` None) or on the unit at ``target_path``."""
        scopes = self.scopes_for(permission)
        if target_path is None:
            return bool(scopes)
        return any(target_path.startswith(s) for s in scopes)

    def can_grant(self, role: Role, target_path: str) -> bool:
        return any(
            role in GRANTABLE_BY[g.role]
            and target_path.startswith(g.scope_path)
            and Permission.STAFF_MANAGE in ROLE_PERMISSIONS[g.role]
            for g in self.grants
        )


def narrowest(paths: Iterable[str]) -> list[str]:
    """Drop paths already covered by a shorter one ('/1/' covers '/1/4/')."""
    kept: list[str] = []
    for p in sorted(set(paths), key=len):
        if not any(p.startswith(k) for k in kept):
            kept.append(p)
    return kept
