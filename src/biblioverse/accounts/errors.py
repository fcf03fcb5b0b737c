"""Broken rules of staff accounts and sign-in."""

from __future__ import annotations

from biblioverse.errors import AuthenticationFailed, FieldError, NotFound, ValidationFailed
from biblioverse.i18n import N_


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


class WrongCurrentSecret(ValidationFailed):
    """Changing a password, a PIN or an e-mail address needs the current password: a
    session left open on a shared computer must not be enough to take the account."""

    code = "wrong_current_password"

    def __init__(self) -> None:
        super().__init__(
            [
                FieldError(
                    "current_password",
                    "wrong_current_password",
                    N_("Your current password is needed for this change, and it was not right."),
                )
            ]
        )
