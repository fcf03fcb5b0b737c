"""The digital twin: floor plans, where a copy stands on them, routes to the shelf, and the
3D library's scene."""

from biblioverse.twin.errors import NoRoute, PlaceNotFound, PlanNotFound
from biblioverse.twin.models import FloorPlan
from biblioverse.twin.service import (
    Directions,
    Spot,
    Twins,
    export_plan,
    import_plan,
    locate,
    place,
    plan_row,
    route,
)

__all__ = [
    "Directions",
    "FloorPlan",
    "NoRoute",
    "PlaceNotFound",
    "PlanNotFound",
    "Spot",
    "Twins",
    "export_plan",
    "import_plan",
    "locate",
    "place",
    "plan_row",
    "route",
]
