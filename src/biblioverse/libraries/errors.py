"""Broken rules of the organisation tree."""

from __future__ import annotations

from biblioverse.errors import NotFound


class OrgUnitNotFound(NotFound):
    code = "library_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("library", key)


class LocationNotFound(NotFound):
    code = "location_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("location", key)
