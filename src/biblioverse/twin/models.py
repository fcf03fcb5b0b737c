"""Tables of the twin context: each branch's floor plan."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from biblioverse.db import Base, JSONType, UTCDateTime


class FloorPlan(Base):
    """A branch's plan as checked GeoJSON (floors, walls, zones, shelves, points of
    interest). A new import replaces it whole and raises its version, which is what the
    routing graphs held in memory are keyed by."""

    __tablename__ = "floor_plans"

    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
