"""Broken rules of self-service machines over SIP2."""

from __future__ import annotations

from biblioverse.errors import NotFound


class Sip2AccountNotFound(NotFound):
    code = "sip2_account_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("SIP2 account", key)
