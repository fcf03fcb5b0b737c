"""3D library benchmark: a branch of 50,000 books, built and first frame drawn in headless
Chromium, and how many draw calls it takes.

    .venv/bin/python bench/scene3d.py           # 50,000 books on 330 shelves, three floors
    .venv/bin/python bench/scene3d.py --quick   # 5,000 books

A throwaway data folder gets a branch with the benchmark plan (`twin.layout.bench_building`),
every shelf a call-number range, and the copies on them; `biblioverse serve` serves it, and
Debian's Chromium (SwiftShader WebGL on the CPU, as the tests run it) opens
`/libraries/{id}/3d`. The page reports, at its first frame: time since navigation start
(HTML, three.js modules, the scene's JSON, building the meshes, the first render), and the
renderer's draw calls. Three loads; the median is reported.

The peer is three.js alone on the same page origin: one InstancedMesh of as many boxes,
random positions, no data to fetch; what drawing that many books costs at the least.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import _harness as h  # before biblioverse: it puts this checkout's src/ on the path
from _harness import emit, percentile
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(h.ROOT))  # for tests.serving
from tests.serving import served

from biblioverse import catalog, libraries, migrate, twin
from biblioverse.access import Actor, Grant, PrincipalKind, Role
from biblioverse.db import make_engine, make_session_factory, utcnow
from biblioverse.libraries import OrgKind, UnitInput
from biblioverse.twin import layout

CHROMIUM = os.environ.get("BIBLIOVERSE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


def call_number(n: int) -> str:
    return f"QA{n // 10 + 1}.{n % 10}"


def seed(data_dir: Path, books: int) -> int:
    url = f"sqlite:///{data_dir / 'biblioverse.db'}"
    migrate.upgrade(url)
    factory = make_session_factory(make_engine(url))
    at = utcnow()
    with factory() as session:
        top = libraries.create_unit(
            session, None, UnitInput(OrgKind.CONSORTIUM, "bench-c", "Bench", "测试"), at=at
        )
        unit = libraries.create_unit(
            session,
            None,
            UnitInput(OrgKind.LIBRARY, "bench", "Bench Library", "测试图书馆", parent_id=top.id),
            at=at,
        )
        doc = layout.bench_building(shelves_per_zone=55, levels=3)
        shelves = [f for f in doc["features"] if f["properties"]["kind"] == "shelf"]
        zones = {f["properties"]["zone"] for f in shelves}
        locs = {}
        for code in sorted(zones):
            locs[code] = libraries.add_location(
                session,
                None,
                unit,
                libraries.LocationInput(code, int(code[0]), code, code, code),
                at=at,
            )
        per = -(-books // len(shelves))
        for j, f in enumerate(shelves):
            f["properties"].update(
                scheme="lcc",
                first_call=call_number(j * per),
                last_call=call_number((j + 1) * per - 1),
            )
        system = Actor(
            PrincipalKind.STAFF, 0, "bench", grants=(Grant(Role.ADMIN, unit.path, unit.id),)
        )
        twin.import_plan(session, system, unit, doc, at=at)
        record = catalog.save_record(
            session, system, None, catalog.RecordForm(title="Bench"), at=at
        )
        for start in range(0, books, 5000):
            rows = []
            for n in range(start, min(books, start + 5000)):
                shelf = shelves[n // per]["properties"]
                rows.append(
                    catalog.NewItem(
                        record.id,
                        f"B{n:07d}",
                        unit.id,
                        location_id=locs[shelf["zone"]].id,
                        call_number=call_number(n),
                    )
                )
            catalog.add_items(session, None, rows, at=at)
        session.commit()
        return unit.id


PEER = """<!doctype html><html><body style="margin:0">
<canvas id="c" style="width:1280px;height:720px"></canvas>
<script type="importmap">{"imports": {"three": "/static/vendor/three/three.module.js"}}</script>
<script type="module">
import * as THREE from "three";
const n = %d;
const renderer = new THREE.WebGLRenderer({canvas: document.getElementById("c"), antialias: true});
renderer.setSize(1280, 720, false);
const scene = new THREE.Scene();
scene.add(new THREE.HemisphereLight(0xffffff, 0x888888, 2));
const mesh = new THREE.InstancedMesh(new THREE.BoxGeometry(1, 1, 1), new THREE.MeshLambertMaterial(), n);
const m = new THREE.Matrix4(), q = new THREE.Quaternion(), p = new THREE.Vector3(), s = new THREE.Vector3(0.03, 0.25, 0.2);
const c = new THREE.Color();
for (let i = 0; i < n; i++) {
  p.set(Math.random() * 60, Math.random() * 12, -Math.random() * 40);
  mesh.setMatrixAt(i, m.compose(p, q, s));
  mesh.setColorAt(i, c.setHSL(Math.random(), 0.5, 0.5));
}
scene.add(mesh);
const camera = new THREE.PerspectiveCamera(60, 16 / 9, 0.05, 600);
camera.position.set(30, 50, 40);
camera.lookAt(30, 0, -20);
renderer.render(scene, camera);
window.__peer = {ms: performance.now(), calls: renderer.info.render.calls};
</script></body></html>"""


def measure(url: str, books: int, runs: int = 3) -> tuple[list[dict[str, Any]], list[float]]:
    ours: list[dict[str, Any]] = []
    peer: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for _ in range(runs):
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.goto(url)
            page.locator("#twin-canvas[data-ready='1']").wait_for(timeout=60_000)
            ours.append(page.evaluate("window.__twin.stats"))
            ctx.close()
        base = url.split("/libraries/")[0]
        for _ in range(runs):
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.route(
                f"{base}/bench-peer.html",
                lambda r: r.fulfill(body=PEER % books, content_type="text/html"),
            )
            page.goto(f"{base}/bench-peer.html")
            page.wait_for_function("() => window.__peer !== undefined", timeout=60_000)
            peer.append(page.evaluate("window.__peer.ms"))
            ctx.close()
        browser.close()
    return ours, peer


def main() -> None:
    args = h.arguments(__doc__, quick="5,000 books").parse_args()
    books = 5_000 if args.quick else 50_000
    h.start("scene3d")
    h.emit_machine(quick=args.quick)
    with tempfile.TemporaryDirectory(prefix="bench-scene3d-") as tmp:
        data_dir = Path(tmp)
        unit_id = seed(data_dir, books)
        with served(data_dir, timeout_s=60) as base:
            ours, peer = measure(f"{base}/libraries/{unit_id}/3d", books)
    drawn = [s["books"] for s in ours]
    if min(drawn) < books:
        raise SystemExit(f"only {min(drawn)} of {books} books drawn")
    first = percentile((s["sinceNavigationMs"] for s in ours), 50)
    emit("first_frame_ms", first, "ms", goal=2000, better="lower", books=books)
    emit("draw_calls", max(s["drawCalls"] for s in ours), "calls", goal=30, better="lower")
    emit("scene_fetch_ms", percentile((s["fetchMs"] for s in ours), 50), "ms")
    emit("mesh_build_ms", percentile((s["buildMs"] for s in ours), 50), "ms")
    emit("peer_threejs_instanced_first_frame_ms", percentile(peer, 50), "ms", books=books)
    emit("ratio_vs_bare_threejs", first / percentile(peer, 50), "x", better="lower")


if __name__ == "__main__":
    main()
