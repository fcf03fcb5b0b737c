"""Broken rules of staff accounts and sign-in."""

from __future__ import annotations

from biblioverse.errors import (
    AuthenticationFailed,
    Conflict,
    FieldError,
    NotFound,
    ValidationFailed,
)
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


class DeviceNotFound(NotFound):
    """No such device, or one of a library the actor does not manage devices of."""

    code = "device_not_found"

    def __init__(self, key: object) -> None:
        super().__init__("device", key)


class DeviceRetired(Conflict):
    """A retired device keeps its history but has no key to rotate and nothing to retire."""

    code = "device_retired"

    def __init__(self, device_id: int) -> None:
        super().__init__(f"device {device_id} is retired", details={"device_id": device_id})
