"""Broken rules of staff accounts and sign-in."""

from __future__ import annotations

from biblioverse.errors import AuthenticationFailed, NotFound


class StaffNotFound(NotFound):
    code = "staff_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("staff user", key)


class BadCredentials(AuthenticationFailed):
    code = "bad_credentials"

    def __init__(self) -> None:
        super().__init__("wrong name or password")


class TokenInvalid(AuthenticationFailed):
    code = "invalid_token"


class AccountDisabled(AuthenticationFailed):
    code = "account_disabled"
