"""What every device's HTTP messages share: a JSON body."""

from __future__ import annotations

from typing import Any

from biblioverse.errors import FieldError, ValidationFailed


def json_only(body: Any) -> None:
    """A device's body as JSON: FastAPI hands over one sent as another type as its bytes."""
    if isinstance(body, bytes):
        raise ValidationFailed(
            [FieldError("body", "invalid", "a JSON body (Content-Type: application/json)")]
        )
