"""Routes through a floor plan: a visibility graph per floor (shapely), joined across floors
by lifts and stairs, searched with A* (networkx).

A reader is a disc of `CLEARANCE` metres: walls, shelves and the floor's edge are grown by
it, and what is left is where the centre of a reader can walk. The graph's corners sit just
outside each grown obstacle; two corners are joined when the straight line between them stays
in the walkable space. The shortest path between two points among polygons runs through such
corners, so A* on this graph finds it.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from biblioverse.lazy import lazy_module
from biblioverse.twin.rules import CONNECTORS, Plan, PoiKind

if TYPE_CHECKING:
    import networkx as nx
    import numpy as np
    import shapely
    from shapely import ops as shapely_ops
else:
    # loaded with the first plan (see biblioverse.lazy)
    np = lazy_module("numpy")
    shapely = lazy_module("shapely")
    shapely_ops = lazy_module("shapely.ops")

CLEARANCE = 0.35  # half the width a wheelchair needs
EPS = 0.05  # corners stand this far off the grown obstacles
SNAP = 2.0  # a point of interest drawn on a desk is reached from within this distance
LIFT_COST = 15.0  # metres a lift "costs": the wait; then per floor
LIFT_PER_FLOOR = 4.0
STAIRS_PER_FLOOR = 10.0
MIN_PER_FLOOR = min(LIFT_PER_FLOOR, STAIRS_PER_FLOOR)


class Unreachable(Exception):
    """No way between two places (with the route's options)."""


@dataclass(frozen=True)
class Place:
    """Where a route starts or ends: one or more standing points (a shelf has one per side)."""

    label: str  # English, for errors and logs
    points: tuple[tuple[int, float, float], ...]  # (level, x, y)
    kind: str  # shelf, zone, poi, position
    code: str | None = None
    facing: tuple[float, float] | None = None  # the shelf's centre, to say left or right
    nodes: tuple[int, ...] = ()  # the graph's nodes at those points, when it has them
    names: tuple[str, str] = ("", "")  # what a reader calls it, in English and Chinese


@dataclass
class Leg:
    level: int
    points: list[tuple[float, float]]


@dataclass
class Route:
    legs: list[Leg]
    metres: float
    changes: list[dict[str, Any]] = field(default_factory=list)  # floor changes, in order
    goal_side: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "metres": round(self.metres, 1),
            "legs": [
                {"level": leg.level, "points": [[round(x, 2), round(y, 2)] for x, y in leg.points]}
                for leg in self.legs
            ],
            "changes": self.changes,
        }


@dataclass
class _FloorSpace:
    free: Any  # the walkable polygon(s), prepared
    ids: np.ndarray  # the corners on this floor: graph nodes
    xy: np.ndarray
    prev: np.ndarray  # each corner's neighbours on its ring, for the tangent test
    next: np.ndarray


class Navigator:
    """The routing graph of one plan. Built once per plan version; queries take a lock,
    because each adds its own start and goal to the graph for its search (a CPU-bound search
    gains nothing from running beside another under the GIL)."""

    def __init__(self, plan: Plan) -> None:
        # networkx is imported with the first plan, not with the module: it weighs on every
        # web worker's memory, and most workers serve no route for a long time.
        import networkx as nx

        self.plan = plan
        self.graph: nx.Graph[int] = nx.Graph()
        self.pos: dict[int, tuple[int, float, float]] = {}
        self.floors: dict[int, _FloorSpace] = {}
        self.poi_nodes: dict[str, int] = {}
        self.shelf_nodes: dict[str, dict[str, int]] = {}
        self.zone_nodes: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next = 0
        self._build()

    # --- building -------------------------------------------------------------------

    def _node(self, level: int, x: float, y: float) -> int:
        n = self._next
        self._next += 1
        self.pos[n] = (level, x, y)
        self.graph.add_node(n)
        return n

    def _build(self) -> None:
        plan = self.plan
        for level, floor in plan.floors.items():
            grown = [
                s.footprint.buffer(CLEARANCE, join_style="mitre")
                for s in plan.shelves
                if s.level == level
            ] + [
                w.line.buffer(w.thickness / 2 + CLEARANCE, cap_style="square", join_style="mitre")
                for w in plan.walls
                if w.level == level
            ]
            inner = floor.outline.buffer(-CLEARANCE, join_style="mitre")
            blocked = shapely.union_all(grown) if grown else shapely.Polygon()
            free = inner.difference(blocked)
            shapely.prepare(free)
            rings = [g.buffer(EPS, join_style="mitre") for g in grown]
            rings.append(floor.outline.buffer(-(CLEARANCE + EPS), join_style="mitre"))
            found = [
                c for g in rings for c in _corners(g) if free.contains(shapely.Point(c[0], c[1]))
            ]
            ids = np.array([self._node(level, c[0], c[1]) for c in found], dtype=np.int64)
            arr = np.array(found, dtype=float).reshape(-1, 6)
            self.floors[level] = _FloorSpace(free, ids, arr[:, 0:2], arr[:, 2:4], arr[:, 4:6])
            self._join_all(level)
        for p in plan.pois:
            snapped = self._walkable(p.level, p.x, p.y)
            if snapped is None:
                continue
            n = self._node(p.level, *snapped)
            self.poi_nodes[p.code] = n
            self._join(n)
        for s in plan.shelves:
            sides: dict[str, int] = {}
            for side in s.side_names:
                x, y = s.face_point(side, CLEARANCE + EPS)
                if self.floors[s.level].free.contains(shapely.Point(x, y)):
                    n = self._node(s.level, x, y)
                    sides[side] = n
                    self._join(n)
            self.shelf_nodes[s.code] = sides
        for z in plan.zones:
            space = self.floors[z.level].free.intersection(z.area)
            if space.is_empty:
                continue
            c = space.representative_point()
            n = self._node(z.level, c.x, c.y)
            self.zone_nodes[z.code] = n
            self._join(n)
        self.stops: dict[int, list[tuple[float, float]]] = {}
        for stops in plan.connectors().values():
            for p in stops:
                if p.code in self.poi_nodes:
                    self.stops.setdefault(p.level, []).append(self.pos[self.poi_nodes[p.code]][1:])
            for a, b in itertools.pairwise(stops):
                na, nb = self.poi_nodes.get(a.code), self.poi_nodes.get(b.code)
                if na is None or nb is None or a.level == b.level:
                    continue
                floors = abs(b.level - a.level)
                if a.kind == PoiKind.LIFT:
                    cost = LIFT_COST + LIFT_PER_FLOOR * floors
                else:
                    cost = STAIRS_PER_FLOOR * floors
                self.graph.add_edge(
                    na, nb, weight=cost, via=a.kind.value, step_free=CONNECTORS[a.kind]
                )
        self._landmarks()

    def _landmarks(self, count: int = 12) -> None:
        """Distances from a few far-apart nodes to every node (the ALT technique): for any
        two nodes, the difference of their distances to a landmark is a lower bound of the
        walk between them, much closer to the truth than the straight line in a room of
        shelves, so A* searches far fewer corners. Dropping the stairs for a step-free route
        only lengthens walks, so the bound holds for it too."""
        import networkx as nx

        self.xyz = np.array([self.pos[n] for n in range(self._next)], dtype=float).reshape(-1, 3)
        # each node's straight line to the nearest lift or stair on its floor
        self.to_stop_arr = np.array(
            [
                min(
                    (math.hypot(x - cx, y - cy) for cx, cy in self.stops.get(lv, [])),
                    default=math.inf,
                )
                for lv, x, y in (self.pos[n] for n in range(self._next))
            ],
            dtype=float,
        )
        self.land_arr = np.zeros((self._next, 0))
        if self.graph.number_of_nodes() == 0:
            return
        first = next(iter(self.poi_nodes.values()), 0)
        dist = nx.single_source_dijkstra_path_length(self.graph, first, weight="weight")
        tables: list[dict[int, float]] = []
        nearest = dict.fromkeys(self.graph.nodes, math.inf)
        for _ in range(count):
            # the next landmark: the reachable node farthest from those chosen so far
            src = max(dist, key=lambda n: nearest[n] if tables else dist[n])
            table = nx.single_source_dijkstra_path_length(self.graph, src, weight="weight")
            tables.append(table)
            for n, d in table.items():
                nearest[n] = min(nearest[n], d)
        nodes = range(self._next)
        self.land_arr = np.array([[t.get(n, np.inf) for t in tables] for n in nodes]).reshape(
            self._next, len(tables)
        )

    def _visible(
        self, level: int, x: float, y: float, among: slice | None = None, corner: int | None = None
    ) -> np.ndarray:
        """The corners (of ``among``) a reader at (x, y) can walk to in a straight line and
        that a shortest path could bend around: the line only grazes the corner's obstacle
        (both its ring neighbours lie on one side). With ``corner``, the point is itself that
        corner and the line must graze it too. Most pairs fail that cheap test, so few lines
        reach the exact test against the walkable space."""
        space = self.floors[level]
        sl = among or slice(None)
        ids, xy = space.ids[sl], space.xy[sl]
        if len(ids) == 0:
            return ids
        d = xy - np.array([x, y])
        ok = _grazes(d, space.prev[sl] - xy, space.next[sl] - xy)
        if corner is not None:
            ok &= _grazes(-d, space.prev[corner] - (x, y), space.next[corner] - (x, y))
        ok &= np.hypot(d[:, 0], d[:, 1]) > 1e-9
        if not ok.any():
            return np.asarray(ids[ok])
        cand = np.flatnonzero(ok)
        starts = np.broadcast_to(np.array([x, y]), (len(cand), 2))
        lines = shapely.linestrings(np.stack([starts, xy[cand]], axis=1))
        cand = cand[shapely.covers(space.free, lines)]
        # of corners in a row (the ends of a run of shelves), only the nearest: the path to a
        # farther one passes it anyway, and the search then weighs one edge instead of many
        dc = d[cand]
        angle = np.round(np.arctan2(dc[:, 1], dc[:, 0]), 6)
        order = np.lexsort((np.hypot(dc[:, 0], dc[:, 1]), angle))
        first = np.ones(len(order), dtype=bool)
        first[1:] = angle[order][1:] != angle[order][:-1]
        return ids[cand[order[first]]]

    def _join_all(self, level: int) -> None:
        space = self.floors[level]
        for k in range(len(space.ids)):
            x, y = space.xy[k]
            a = int(space.ids[k])
            for b in self._visible(level, x, y, corner=k):
                if b > a:
                    self._edge(a, int(b))

    def _join(self, n: int) -> list[int]:
        level, x, y = self.pos[n]
        seen = [int(b) for b in self._visible(level, x, y)]
        for b in seen:
            self._edge(n, b)
        return seen

    def _edge(self, a: int, b: int) -> None:
        _, ax, ay = self.pos[a]
        _, bx, by = self.pos[b]
        self.graph.add_edge(a, b, weight=math.hypot(ax - bx, ay - by))

    def _walkable(self, level: int, x: float, y: float) -> tuple[float, float] | None:
        """The point itself when a reader can stand there, else the nearest such point within
        `SNAP` metres (a service desk is drawn on the desk; the reader stands before it)."""
        space = self.floors.get(level)
        if space is None:
            return None
        p = shapely.Point(x, y)
        if space.free.contains(p):
            return x, y
        if space.free.is_empty:
            return None
        near = shapely_ops.nearest_points(space.free, p)[0]
        if near.distance(p) > SNAP:
            return None
        # step just inside: the nearest point lies on the edge
        inside = space.free.intersection(near.buffer(EPS * 2)).representative_point()
        if inside.is_empty:
            return None
        return inside.x, inside.y

    # --- places ------------------------------------------------------------------------

    def shelf_place(self, code: str, side: str | None = None) -> Place:
        shelf = self.plan.shelf(code)
        if shelf is None:
            raise KeyError(code)
        nodes = self.shelf_nodes.get(code, {})
        sides = [side] if side in nodes else list(nodes)
        ids = tuple(nodes[s] for s in sides)
        points = tuple(self.pos[n] for n in ids)
        return Place(f"shelf {code}", points, "shelf", code, (shelf.x, shelf.y), ids, (code, code))

    def poi_place(self, code: str) -> Place:
        n = self.poi_nodes.get(code)
        poi = self.plan.poi(code)
        if poi is None:
            raise KeyError(code)
        names = (poi.name_en or code, poi.name_zh or poi.name_en or code)
        if n is None:
            return Place(names[0], (), "poi", code, names=names)
        return Place(names[0], (self.pos[n],), "poi", code, nodes=(n,), names=names)

    def zone_place(self, code: str) -> Place:
        zone = self.plan.zone(code)
        if zone is None:
            raise KeyError(code)
        n = self.zone_nodes.get(code)
        names = (zone.name_en, zone.name_zh)
        if n is None:
            return Place(zone.name_en, (), "zone", code, names=names)
        return Place(zone.name_en, (self.pos[n],), "zone", code, nodes=(n,), names=names)

    def position(self, level: int, x: float, y: float) -> Place:
        snapped = self._walkable(level, x, y)
        return Place("position", (((level, *snapped),) if snapped else ()), "position")

    # --- searching ---------------------------------------------------------------------

    def route(self, start: Place, goal: Place, *, step_free: bool = False) -> Route:
        import networkx as nx

        if not start.points:
            raise Unreachable(f"no one can stand at {start.label}")
        if not goal.points:
            raise Unreachable(f"{goal.label} cannot be reached")
        with self._lock:
            s, made_s = self._attach(start)
            g, made_g = self._attach(goal)
            h = self._heuristic(goal)

            def weight(u: int, v: int, d: dict[str, Any]) -> float | None:
                if step_free and d.get("step_free") is False:
                    return None
                return float(d["weight"])

            try:
                path = nx.astar_path(self.graph, s, g, heuristic=h, weight=weight)
                return self._route(path[1:-1], goal)
            except nx.NetworkXNoPath:
                raise Unreachable(f"no way from {start.label} to {goal.label}") from None
            finally:
                for n in made_s + made_g:
                    self.graph.remove_node(n)
                    self.pos.pop(n, None)

    def _heuristic(self, goal: Place) -> Any:
        """A lower bound of the walk from a node to the goal. On the goal's floor, the straight
        line. On another floor, the walk to the nearest lift or stair there, the climb, and
        the walk from the nearest lift or stair on the goal's floor to the goal: each part no
        longer than any real route's, so A* still finds the shortest, and it heads for the lift
        instead of combing the first floor under the goal."""
        points = goal.points
        arrive = {
            lv: min(
                (math.hypot(x - cx, y - cy) for cx, cy in self.stops.get(lv, [])), default=math.inf
            )
            for lv, x, y in points
        }
        n = len(self.land_arr)
        best = np.full(n, np.inf)
        xyz = self.xyz
        for i, (lv, x, y) in enumerate(points):
            same = xyz[:, 0] == lv
            d = np.where(
                same,
                np.hypot(xyz[:, 1] - x, xyz[:, 2] - y),
                self.to_stop_arr + np.abs(xyz[:, 0] - lv) * MIN_PER_FLOOR + arrive[lv],
            )
            if i < len(goal.nodes) and goal.nodes[i] < n and self.land_arr.shape[1]:
                with np.errstate(invalid="ignore"):
                    gap = np.abs(self.land_arr - self.land_arr[goal.nodes[i]])
                gap[np.isnan(gap)] = 0.0
                d = np.maximum(d, gap.max(axis=1))
            best = np.minimum(best, d)
        table = best.tolist()
        pos = self.pos

        def h(u: int, _: int) -> float:
            if u < n:
                return float(table[u])
            lu, xu, yu = pos[u]  # a node of this search only: the straight line
            return min(
                (math.hypot(xu - x, yu - y) if lu == lv else abs(lu - lv) * MIN_PER_FLOOR)
                for lv, x, y in points
            )

        return h

    def _attach(self, place: Place) -> tuple[int, list[int]]:
        """A node for this search, joined at no cost to each of the place's standing points
        (a shelf's two sides: the nearer wins). Points that are not graph nodes yet (a
        reader's position) get a node of their own for the search."""
        t = self._next
        self._next += 1
        self.pos[t] = place.points[0]
        self.graph.add_node(t)
        made: list[int] = [t]
        for i, point in enumerate(place.points):
            n = place.nodes[i] if i < len(place.nodes) else None
            if n is None:
                n = self._node(*point)
                self._join(n)
                made.append(n)
            self.graph.add_edge(t, n, weight=0.0)
        return t, made

    def _route(self, nodes: list[int], goal: Place) -> Route:
        legs: list[Leg] = []
        changes: list[dict[str, Any]] = []
        metres = 0.0
        for a, b in itertools.pairwise(nodes):
            d = self.graph.edges[a, b] if self.graph.has_edge(a, b) else {}
            if "via" in d:
                changes.append({"via": d["via"], "from": self.pos[a][0], "to": self.pos[b][0]})
        for n in nodes:
            level, x, y = self.pos[n]
            if legs and legs[-1].level == level:
                px, py = legs[-1].points[-1]
                metres += math.hypot(x - px, y - py)
                if (x, y) != (px, py):
                    legs[-1].points.append((x, y))
            else:
                legs.append(Leg(level, [(x, y)]))
        side = None
        if goal.kind == "shelf" and goal.code is not None and nodes:
            last = nodes[-1]
            for s, n in self.shelf_nodes.get(goal.code, {}).items():
                if self.pos[n] == self.pos[last]:
                    side = s
        return Route(legs, metres, changes, side)


def _corners(geom: Any) -> Iterable[tuple[float, float, float, float, float, float]]:
    """The corners of a shape's rings (where a shortest path may bend), each with the corners
    before and after it on its ring."""
    for poly in getattr(geom, "geoms", [geom]):
        if poly.is_empty:
            continue
        for ring in [poly.exterior, *poly.interiors]:
            pts = list(ring.coords)[:-1]
            for i, (x, y) in enumerate(pts):
                (px, py), (qx, qy) = pts[i - 1], pts[(i + 1) % len(pts)]
                yield x, y, px, py, qx, qy


def _grazes(d: np.ndarray, to_prev: np.ndarray, to_next: np.ndarray) -> np.ndarray:
    """For lines arriving at corners along ``d``: whether each corner's two ring neighbours
    lie on the same side of the line (the line touches the obstacle without entering it)."""
    a = d[..., 0] * to_prev[..., 1] - d[..., 1] * to_prev[..., 0]
    b = d[..., 0] * to_next[..., 1] - d[..., 1] * to_next[..., 0]
    return np.asarray(a * b >= -1e-9)
