"""Broken rules of the twin context."""

from __future__ import annotations

from biblioverse.errors import DomainError, NotFound


class PlanNotFound(NotFound):
    code = "floor_plan_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("floor plan of library", key)


class PlaceNotFound(NotFound):
    """A route's start or goal names nothing on the plan."""

    code = "place_not_found"

    def __init__(self, field: str, key: object, why: str = "") -> None:
        DomainError.__init__(
            self,
            f"{field}: {why or f'{key} is not on the floor plan'}",
            details={"field": field, "key": str(key)},
        )


class NoRoute(DomainError):
    """There is no way between the two places (with the options asked for)."""

    kind = "invalid"
    code = "unreachable"

    def __init__(self, message: str, *, step_free: bool) -> None:
        super().__init__(message, details={"step_free": step_free})
