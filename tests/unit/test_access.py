"""Roles and scopes: a role granted on a unit holds for every unit below it."""

from __future__ import annotations

from biblioverse.access import Actor, Grant, Permission, PrincipalKind, Role, narrowest
from biblioverse.accounts.rules import ThrottleState, retry_after, username_errors

CONSORTIUM, CENTRAL, AIRPORT, COMMUNITY = "/1/", "/1/2/", "/1/2/3/", "/1/2/4/"


def staff(role: Role, path: str) -> Actor:
    return Actor(PrincipalKind.STAFF, 1, grants=(Grant(role, path, 0),))


def test_roles_inherit_down_the_tree_and_not_sideways() -> None:
    central = staff(Role.LIBRARIAN, CENTRAL)
    assert central.can(Permission.READERS_MANAGE, AIRPORT)
    airport = staff(Role.LIBRARIAN, AIRPORT)
    assert not airport.can(Permission.READERS_MANAGE, COMMUNITY)
    assert not airport.can(Permission.READERS_MANAGE, CENTRAL)


def test_each_role_holds_only_its_permissions() -> None:
    cat = staff(Role.CATALOGUER, CENTRAL)
    assert cat.can(Permission.CATALOG_MANAGE, CENTRAL)
    assert not cat.can(Permission.READERS_READ)
    circ = staff(Role.CIRCULATION, AIRPORT)
    assert circ.can(Permission.CIRCULATION_OPERATE, AIRPORT)
    assert not circ.can(Permission.STAFF_MANAGE)
    assert staff(Role.ADMIN, CONSORTIUM).can(Permission.ORG_MANAGE, COMMUNITY)
    assert not staff(Role.LIBRARIAN, CENTRAL).can(Permission.ORG_MANAGE)


def test_librarians_cannot_make_admins() -> None:
    lib = staff(Role.LIBRARIAN, CENTRAL)
    assert lib.can_grant(Role.CIRCULATION, AIRPORT)
    assert not lib.can_grant(Role.ADMIN, AIRPORT)
    assert not lib.can_grant(Role.CIRCULATION, "/9/")
    assert staff(Role.ADMIN, CONSORTIUM).can_grant(Role.ADMIN, CENTRAL)


def test_readers_hold_no_staff_permission() -> None:
    reader = Actor(PrincipalKind.READER, 5)
    assert not any(reader.can(p) for p in Permission)


def test_narrowest_drops_covered_paths() -> None:
    assert narrowest([AIRPORT, CENTRAL, "/7/"]) == ["/7/", CENTRAL]


def test_a_lock_is_waited_out_in_whole_seconds() -> None:
    import datetime as dt

    t0 = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)
    locked = ThrottleState(5, t0, t0 + dt.timedelta(seconds=900))
    assert retry_after(None, t0) is None
    assert retry_after(ThrottleState(4, t0, None), t0) is None
    assert retry_after(locked, t0 + dt.timedelta(seconds=1.5)) == 899
    assert retry_after(locked, t0 + dt.timedelta(seconds=900)) is None


def test_usernames() -> None:
    assert username_errors("airport-desk") == []
    assert username_errors("Bad Name")[0].field == "username"
