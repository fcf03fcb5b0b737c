"""Broken rules of reader accounts."""

from __future__ import annotations

from biblioverse.errors import Conflict, NotFound


class ReaderNotFound(NotFound):
    code = "reader_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("reader", key)


class InvalidStatusChange(Conflict):
    code = "invalid_status_change"


class PossibleDuplicate(Conflict):
    """A reader with the same name and birth date is on file: perhaps the same person."""

    code = "possible_duplicate"
