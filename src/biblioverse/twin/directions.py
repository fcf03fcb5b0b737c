"""Turn-by-turn directions from a route, in the reader's language.

The route's corners are many and close where it squeezes through a door; the walk a reader
is told is the route simplified (shapely's Douglas-Peucker) to the bends that matter, each
bend named by how sharply it turns.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from babel.support import NullTranslations

from biblioverse.i18n import N_
from biblioverse.lazy import lazy_module
from biblioverse.twin.navigation import Place, Route
from biblioverse.twin.rules import Plan

if TYPE_CHECKING:
    import shapely
else:
    shapely = lazy_module("shapely")  # loaded with the first route

SIMPLIFY = 0.6  # metres: wiggles smaller than this are not worth a word
SHORT = 1.5  # metres: a walk this short is told as part of the turn after it

TURNS = {
    "straight": N_("Walk %(metres)d m"),
    "slight_left": N_("Bear left and walk %(metres)d m"),
    "slight_right": N_("Bear right and walk %(metres)d m"),
    "left": N_("Turn left and walk %(metres)d m"),
    "right": N_("Turn right and walk %(metres)d m"),
    "around": N_("Turn around and walk %(metres)d m"),
}
START = N_("Start at %(place)s, %(floor)s")
LIFT = N_("Take the lift to %(floor)s")
STAIRS_UP = N_("Take the stairs up to %(floor)s")
STAIRS_DOWN = N_("Take the stairs down to %(floor)s")
ESCALATOR = N_("Take the escalator to %(floor)s")
ARRIVE = N_("You have arrived at %(place)s")
ARRIVE_LEFT = N_("Shelf %(shelf)s is on your left")
ARRIVE_RIGHT = N_("Shelf %(shelf)s is on your right")
ARRIVE_AHEAD = N_("Shelf %(shelf)s is in front of you")
SHELF_SPOT = N_("side %(side)s, shelf level %(level)d from the bottom")
SHELF_SIDE = N_("side %(side)s")


@dataclass
class Step:
    action: str  # start, walk, lift, stairs, escalator, arrive
    text: str
    level: int
    metres: float | None = None
    turn: str | None = None
    to_level: int | None = None
    at: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "text": self.text, "level": self.level}
        for key in ("metres", "turn", "to_level"):
            value = getattr(self, key)
            if value is not None:
                out[key] = round(value, 1) if isinstance(value, float) else value
        if self.at is not None:
            out["at"] = [round(self.at[0], 2), round(self.at[1], 2)]
        return out


def _turn(before: tuple[float, float], after: tuple[float, float]) -> str:
    a = math.degrees(math.atan2(after[1], after[0]) - math.atan2(before[1], before[0]))
    a = (a + 180) % 360 - 180  # left is positive
    if abs(a) < 30:
        return "straight"
    if abs(a) < 60:
        return "slight_left" if a > 0 else "slight_right"
    if abs(a) < 150:
        return "left" if a > 0 else "right"
    return "around"


def _floor(plan: Plan, level: int, zh: bool) -> str:
    floor = plan.floors.get(level)
    if floor is None:
        return str(level)
    return floor.name_zh if zh else floor.name_en


def describe(
    plan: Plan,
    route: Route,
    start: Place,
    goal: Place,
    t: NullTranslations,
    *,
    zh: bool = False,
    shelf_level: int | None = None,
    shelf_side: str | None = None,
) -> list[Step]:
    """The steps of a route: where to start, each walk and turn, each change of floor, and
    where the goal stands (for a shelf: on which hand, which side and which shelf level)."""

    def name(p: Place) -> str:
        return (p.names[1] if zh else p.names[0]) or p.label

    steps: list[Step] = []
    first = route.legs[0]
    steps.append(
        Step(
            "start",
            t.gettext(START)
            % {
                "place": name(start)
                if start.kind != "position"
                else t.gettext(N_("your position")),
                "floor": _floor(plan, first.level, zh),
            },
            first.level,
            at=first.points[0],
        )
    )
    heading: tuple[float, float] | None = None
    for i, leg in enumerate(route.legs):
        if i > 0:
            change = route.changes[i - 1] if i - 1 < len(route.changes) else {"via": "lift"}
            via, up = change["via"], leg.level > route.legs[i - 1].level
            template = {"lift": LIFT, "escalator": ESCALATOR}.get(
                via, STAIRS_UP if up else STAIRS_DOWN
            )
            steps.append(
                Step(
                    via,
                    t.gettext(template) % {"floor": _floor(plan, leg.level, zh)},
                    route.legs[i - 1].level,
                    to_level=leg.level,
                    at=leg.points[0],
                )
            )
            heading = None
        pts = leg.points
        if len(pts) >= 2:
            pts = [(c[0], c[1]) for c in shapely.LineString(pts).simplify(SIMPLIFY).coords]
        carried = 0.0
        for k, ((ax, ay), (bx, by)) in enumerate(itertools.pairwise(pts)):
            d = (bx - ax, by - ay)
            metres = math.hypot(*d)
            if metres < 0.05:
                continue
            if metres < SHORT and k < len(pts) - 2:
                carried += metres  # a step through a door: part of the next turn
                continue
            metres += carried
            carried = 0.0
            turn = "straight" if heading is None else _turn(heading, d)
            if steps[-1].action == "walk" and turn == "straight":
                prev = steps[-1]
                prev.metres = (prev.metres or 0.0) + metres
                template = TURNS[prev.turn] if prev.turn else TURNS["straight"]
                prev.text = t.gettext(template) % {"metres": max(1, round(prev.metres))}
            else:
                steps.append(
                    Step(
                        "walk",
                        t.gettext(TURNS[turn]) % {"metres": max(1, round(metres))},
                        leg.level,
                        metres=metres,
                        turn=turn,
                        at=(ax, ay),
                    )
                )
            heading = d
    last = route.legs[-1]
    end = last.points[-1]
    if goal.kind == "shelf" and goal.facing is not None:
        hand = ARRIVE_AHEAD
        if heading is not None:
            fx, fy = goal.facing[0] - end[0], goal.facing[1] - end[1]
            cross = heading[0] * fy - heading[1] * fx
            dot = heading[0] * fx + heading[1] * fy
            if abs(cross) > abs(dot) * 0.3:
                hand = ARRIVE_LEFT if cross > 0 else ARRIVE_RIGHT
        text = t.gettext(hand) % {"shelf": goal.code}
        side = shelf_side or route.goal_side
        if side and shelf_level:
            text += t.gettext(N_(": ")) + t.gettext(SHELF_SPOT) % {
                "side": side,
                "level": shelf_level,
            }
        elif side:
            text += t.gettext(N_(": ")) + t.gettext(SHELF_SIDE) % {"side": side}
        steps.append(Step("arrive", text, last.level, at=end))
    else:
        steps.append(Step("arrive", t.gettext(ARRIVE) % {"place": name(goal)}, last.level, at=end))
    return steps
