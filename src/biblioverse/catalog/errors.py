"""Broken rules of the catalogue."""

from __future__ import annotations

from biblioverse.errors import Conflict, DomainError, NotFound


class RecordNotFound(NotFound):
    code = "record_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("record", key)


class CatalogFileInvalid(DomainError):
    """The file as a whole cannot be read as MARC21 or MARCXML."""

    code = "catalog_file_invalid"


class ItemNotFound(NotFound):
    code = "item_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("item", key)


class IllegalStatusChange(Conflict):
    """The item lifecycle (``rules.ITEM_MOVES``) does not allow this change of status."""

    code = "illegal_item_status"

    def __init__(self, barcode: str, current: str, target: str) -> None:
        super().__init__(f"copy {barcode} is {current} and cannot become {target}")
        self.current, self.target = current, target
