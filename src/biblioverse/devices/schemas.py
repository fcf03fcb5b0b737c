"""What every device's message answers: the messages of a batch that were refused."""

from __future__ import annotations

from pydantic import BaseModel


class Rejected(BaseModel):
    index: int
    field: str
    message: str
