"""Navigation benchmark: route queries on a three-floor twin with 330 shelves.

    .venv/bin/python bench/navigation.py            # the issue's size: 3 floors, 330 shelves
    .venv/bin/python bench/navigation.py --quick    # 2 floors, 80 shelves

The plan is `twin.layout.bench_building`: on each floor two rooms of 55 double-sided shelves
in rows, walls with doors, a corridor, a lift and stairs, toilets, kiosks, "you are here"
markers. Each query is what `GET /libraries/{id}/route` computes once the plan is in memory:
resolve the start and goal, search, and write the turn-by-turn directions. The mix: from a
point of interest to a shelf (a reader at a kiosk), from a position to a shelf (a robot, a
phone), from a marker to a zone, a third of them step-free, most across floors.

Peers on the same graph and the same start and goal nodes: networkx's Dijkstra, and
networkx's A* with the straight-line heuristic only (what A* is without the landmark bounds).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

import _harness as h  # before biblioverse: it puts this checkout's src/ on the path
import networkx as nx
from _harness import emit, percentile

from biblioverse.i18n import translations
from biblioverse.twin import directions, layout, navigation, rules


def main() -> None:
    ap = h.arguments(__doc__, quick="2 floors, 80 shelves, 300 queries")
    ap.add_argument("--queries", type=int, default=2000)
    args = ap.parse_args()
    levels, per_zone = (2, 20) if args.quick else (3, 55)
    queries = 300 if args.quick else args.queries
    h.start("navigation")
    h.emit_machine(quick=args.quick)

    t0 = time.perf_counter()
    plan = rules.read_geojson(layout.bench_building(shelves_per_zone=per_zone, levels=levels))
    t1 = time.perf_counter()
    nav = navigation.Navigator(plan)
    t2 = time.perf_counter()
    n = len(plan.shelves)
    emit("plan_read_s", t1 - t0, "s", shelves=n, floors=levels)
    emit(
        "graph_build_s",
        t2 - t1,
        "s",
        nodes=nav.graph.number_of_nodes(),
        edges=nav.graph.number_of_edges(),
    )

    rng = random.Random(2026)
    shelves = [s.code for s in plan.shelves]
    pois = [p.code for p in plan.pois if p.kind != rules.PoiKind.SEAT and p.code in nav.poi_nodes]
    markers = [p.code for p in plan.pois if p.kind == rules.PoiKind.MARKER]
    zones = [z.code for z in plan.zones]
    t_en, t_zh = translations("en"), translations("zh_Hans")
    mix: list[tuple[str, Any, Any, bool]] = []
    for _ in range(queries):
        r = rng.random()
        step_free = rng.random() < 0.33
        if r < 0.5:
            mix.append(
                (
                    "poi_to_shelf",
                    nav.poi_place(rng.choice(pois)),
                    nav.shelf_place(rng.choice(shelves)),
                    step_free,
                )
            )
        elif r < 0.8:
            lv = rng.choice(sorted(plan.floors))
            start = nav.position(lv, rng.uniform(2, 40), rng.uniform(1.5, 6))
            mix.append(
                ("position_to_shelf", start, nav.shelf_place(rng.choice(shelves)), step_free)
            )
        else:
            mix.append(
                (
                    "marker_to_zone",
                    nav.poi_place(rng.choice(markers)),
                    nav.zone_place(rng.choice(zones)),
                    step_free,
                )
            )

    for _, a, b, sf in mix[:50]:  # warm up
        nav.route(a, b, step_free=sf)
    times: dict[str, list[float]] = {}
    total: list[float] = []
    metres = 0.0
    for i, (kind, a, b, sf) in enumerate(mix):
        zh = i % 2 == 1
        q0 = time.perf_counter()
        found = nav.route(a, b, step_free=sf)
        directions.describe(plan, found, a, b, t_zh if zh else t_en, zh=zh)
        dt_ms = (time.perf_counter() - q0) * 1000
        times.setdefault(kind, []).append(dt_ms)
        total.append(dt_ms)
        metres += found.metres
    emit(
        "route_p95_ms",
        percentile(total, 95),
        "ms",
        goal=5,
        better="lower",
        n=len(total),
        shelves=n,
        floors=levels,
    )
    emit("route_p50_ms", percentile(total, 50), "ms")
    for kind, values in sorted(times.items()):
        emit(f"{kind}_p95_ms", percentile(values, 95), "ms", n=len(values))
    emit("mean_route_m", metres / len(mix), "m")

    # peers: plain Dijkstra and straight-line A* between the same graph nodes
    pairs = [(a, b, sf) for kind, a, b, sf in mix if kind == "poi_to_shelf"]
    g = nav.graph

    def w(sf: bool) -> Any:
        return lambda u, v, d: None if sf and d.get("step_free") is False else d["weight"]

    def straight(b: navigation.Place) -> Callable[[int, int], float]:
        gl, gx, gy = b.points[0]

        def h(u: int, _: int) -> float:
            lu, x, y = nav.pos[u]
            return math.hypot(x - gx, y - gy) + abs(lu - gl) * navigation.MIN_PER_FLOOR

        return h

    ours, dij, plain = [], [], []
    for a, b, sf in pairs:
        q0 = time.perf_counter()
        nav.route(a, b, step_free=sf)
        q1 = time.perf_counter()
        nx.dijkstra_path(g, a.nodes[0], b.nodes[0], weight=w(sf))
        q2 = time.perf_counter()
        nx.astar_path(g, a.nodes[0], b.nodes[0], heuristic=straight(b), weight=w(sf))
        q3 = time.perf_counter()
        ours.append((q1 - q0) * 1000)
        dij.append((q2 - q1) * 1000)
        plain.append((q3 - q2) * 1000)
    emit("poi_to_shelf_search_p95_ms", percentile(ours, 95), "ms", n=len(ours))
    emit("peer_networkx_dijkstra_p95_ms", percentile(dij, 95), "ms", n=len(dij))
    emit("peer_networkx_astar_straight_line_p95_ms", percentile(plain, 95), "ms", n=len(plain))
    emit("ratio_vs_dijkstra", percentile(ours, 95) / percentile(dij, 95), "x", better="lower")


if __name__ == "__main__":
    main()
