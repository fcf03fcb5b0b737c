"""The base of every domain error.

Each context declares one exception class per broken business rule in its own
``errors.py``; none of them knows about HTTP. ``app.py`` holds the single table that maps
an error's ``kind`` to a status code and the one JSON error shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class DomainError(Exception):
    """A request broke a rule. ``code`` is stable for clients, ``message`` is for people."""

    kind: ClassVar[str] = "invalid"
    code: ClassVar[str] = "invalid_request"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    kind = "not_found"
    code = "not_found"

    def __init__(self, entity: str, key: object) -> None:
        super().__init__(f"{entity} {key!s} not found", details={"entity": entity, "key": str(key)})


class Conflict(DomainError):
    kind = "conflict"
    code = "conflict"


class DuplicateValue(Conflict):
    """A value that must be unique is taken; names the field."""

    code = "duplicate"

    def __init__(self, entity: str, field: str, value: object) -> None:
        super().__init__(
            f"{entity} with {field} {value!s} already exists",
            details={"entity": entity, "field": field, "value": str(value)},
        )
        self.field = field


class FieldError:
    """One problem with one field. ``message`` is English, for the API; a message with
    values is written as a template (``"%(key)s must be a number"``) with ``params``, so
    that a page can translate the template and fill in the values (`i18n.field_message`)."""

    __slots__ = ("code", "field", "message", "params", "template")

    def __init__(
        self, field: str, code: str, message: str, params: Mapping[str, object] | None = None
    ) -> None:
        self.field, self.code, self.template = field, code, message
        self.params = dict(params) if params else {}
        self.message = message % self.params if self.params else message

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"FieldError({self.field!r}, {self.code!r})"


class ValidationFailed(DomainError):
    kind = "invalid"
    code = "validation_error"

    def __init__(self, errors: Sequence[FieldError]) -> None:
        fields = ", ".join(e.field for e in errors)
        super().__init__(f"invalid fields: {fields}", details=[e.as_dict() for e in errors])
        self.errors = list(errors)

    def by_field(self) -> Mapping[str, str]:
        return {e.field: e.message for e in self.errors}


class AuthenticationFailed(DomainError):
    kind = "unauthenticated"
    code = "authentication_failed"


class PermissionDenied(DomainError):
    kind = "forbidden"
    code = "forbidden"


class Throttled(DomainError):
    kind = "throttled"
    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, details={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


# The one table from a domain error's kind to an HTTP status, for the API and the pages.
STATUS_BY_KIND: dict[str, int] = {
    "invalid": 422,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "throttled": 429,
}


def status_of(exc: DomainError) -> int:
    return STATUS_BY_KIND.get(exc.kind, 400)
