"""Pure decisions about sign-in: throttling, usernames. No I/O."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from biblioverse.errors import FieldError
from biblioverse.i18n import N_


@dataclass(frozen=True)
class ThrottleState:
    """A throttle's key as counted (the counting is one SQL statement, in the service, so
    that attempts made at once all count): attempts since ``window_start`` that were not
    proved right, and the end of the lock that began when they reached the limit."""

    failures: int
    window_start: dt.datetime
    locked_until: dt.datetime | None


def retry_after(state: ThrottleState | None, now: dt.datetime) -> int | None:
    """Seconds to wait, if the key is locked at ``now``."""
    if state is None or state.locked_until is None or state.locked_until <= now:
        return None
    return max(1, int((state.locked_until - now).total_seconds() + 0.999))


_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def may_be_username(login: str) -> bool:
    """Whether a login, as typed, has the shape of a staff user name (no e-mail has)."""
    return _USERNAME.match(login.strip().lower()) is not None


def username_errors(username: str) -> list[FieldError]:
    if not _USERNAME.match(username):
        return [
            FieldError(
                "username",
                "invalid_username",
                N_("2 to 64 lower-case letters, digits, dots, hyphens or underscores"),
            )
        ]
    return []


def staff_password_errors(password: str) -> list[FieldError]:
    if len(password) < 10:
        return [
            FieldError("password", "too_short", N_("staff passwords need at least 10 characters"))
        ]
    if len(password) > 128:
        return [FieldError("password", "too_long", N_("128 characters at most"))]
    return []
