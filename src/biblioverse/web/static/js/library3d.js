// The 3D library: the branch's twin drawn from the same plan as the map and the routes.
// Every kind of thing is one instanced mesh per floor (books, shelves, walls, points of
// interest), so a branch of fifty thousand books is a couple of dozen draw calls.
import * as THREE from "three";
import { OrbitControls } from "three/addons/controls/OrbitControls.js";

const started = performance.now();
const root = document.getElementById("twin3d");
const canvas = document.getElementById("twin-canvas");
const statusLine = document.getElementById("twin-status");
const card = document.getElementById("book-card");
const form = document.getElementById("twin-search");
const libraryId = root.dataset.library;
const locale = root.dataset.locale || "en";
const zh = locale === "zh_Hans";
const text = (key) => root.dataset["t" + key[0].toUpperCase() + key.slice(1)] || "";
const say = (words) => { statusLine.textContent = words; };
const stats = { books: 0, drawCalls: 0, fetchMs: 0, buildMs: 0, firstFrameMs: 0, sinceNavigationMs: 0 };
window.__twin = { stats, ready: false };
// ask for the scene at once: the server builds it while the browser sets up WebGL
const sceneRequest = fetch(`/api/v1/libraries/${libraryId}/scene`, { credentials: "same-origin" });

const WALL_HEIGHT = 2.6;
const SHELF_HEIGHT = 2.0;
const EYE = 1.6;
const POI_COLOURS = {
  entrance: 0x0a7d32, service_desk: 0x1f6feb, kiosk: 0x7b3fe4, return_point: 0xd97706,
  gate: 0x374151, toilet: 0x0ea5e9, lift: 0x10b981, stairs: 0x6b7280, escalator: 0x6b7280,
  seat: 0x9ca3af, info: 0x1f6feb, marker: 0x16a34a,
};
const ZONE_COLOURS = {
  children: 0xfdf0d5, ancient_books: 0xefe3d3, reading_room: 0xe5f2e5, study: 0xe5f2e5,
  lecture: 0xf0e6f5, self_service: 0xeaeaea, stacks: 0xe7eef7, exhibition: 0xf7ecd9,
};

function classColours(n) {
  // one hue per main class, spread round the wheel; the last ("?") grey
  const out = [];
  for (let i = 0; i < n - 1; i++) out.push(new THREE.Color().setHSL((i * 0.618) % 1, 0.55, 0.45));
  out.push(new THREE.Color(0x888888));
  return out;
}

// the plan's (x, y) in metres, y north; three.js is y up, so plan y runs along -z
const world = (x, y, h) => new THREE.Vector3(x, h, -y);

function flatShape(points) {
  const shape = new THREE.Shape(points.map(([x, y]) => new THREE.Vector2(x, y)));
  const geometry = new THREE.ShapeGeometry(shape);
  geometry.rotateX(-Math.PI / 2);
  return geometry;
}

function mergedFlat(parts) {
  // several flat shapes with their own colours in one geometry: one draw call
  const positions = [];
  const colours = [];
  for (const { points, colour, lift } of parts) {
    const g = flatShape(points).toNonIndexed();
    const p = g.getAttribute("position");
    for (let i = 0; i < p.count; i++) {
      positions.push(p.getX(i), p.getY(i) + lift, p.getZ(i));
      colours.push(colour.r, colour.g, colour.b);
    }
  }
  const geometry = new THREE.BufferGeometry();
  geometry.setAttribute("position", new THREE.Float32BufferAttribute(positions, 3));
  geometry.setAttribute("color", new THREE.Float32BufferAttribute(colours, 3));
  geometry.computeVertexNormals();
  return geometry;
}

function hash(n) {
  // a steady pseudo-random 0..1 per book, so heights do not change between visits
  let x = (n * 2654435761) >>> 0;
  x ^= x >>> 13;
  return ((x * 1274126177) >>> 0) / 4294967296;
}

async function main() {
  let renderer;
  try {
    renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
  } catch (err) {
    say(text("nowebgl"));
    return;
  }
  say(text("loading"));
  const response = await sceneRequest;
  if (!response.ok) { say(text("nowebgl")); return; }
  const data = await response.json();
  const fetched = performance.now();
  stats.fetchMs = fetched - started;

  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  renderer.xr.enabled = true;
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xdfe7ef);
  scene.add(new THREE.HemisphereLight(0xffffff, 0x8a8a80, 2.4));
  const sun = new THREE.DirectionalLight(0xffffff, 1.4);
  sun.position.set(40, 80, 30);
  scene.add(sun);

  const floors = new Map(data.floors.map((f) => [f.level, f]));
  const levelGroups = new Map();
  const bookMeshes = [];
  const shelfMeshes = new Map();
  const shelvesByCode = new Map(data.shelves.map((s, i) => [s.code, { ...s, index: i }]));
  const colours = classColours(data.classes.length);
  const bw = data.book_width;
  const matrix = new THREE.Matrix4();
  const quaternion = new THREE.Quaternion();
  const position = new THREE.Vector3();
  const scale = new THREE.Vector3();
  const up = new THREE.Vector3(0, 1, 0);
  const unitBox = new THREE.BoxGeometry(1, 1, 1);

  for (const f of data.floors) {
    const group = new THREE.Group();
    group.userData.level = f.level;
    scene.add(group);
    levelGroups.set(f.level, group);
    const e = f.elevation;
    const floorMesh = new THREE.Mesh(flatShape(f.outline), new THREE.MeshLambertMaterial({ color: 0xf6f4ee }));
    floorMesh.position.y = e;
    group.add(floorMesh);
    const zones = data.zones.filter((z) => z.level === f.level);
    if (zones.length) {
      const parts = zones.map((z) => ({ points: z.outline, colour: new THREE.Color(ZONE_COLOURS[z.type] || 0xe7eef7), lift: 0.01 }));
      const zoneMesh = new THREE.Mesh(mergedFlat(parts), new THREE.MeshLambertMaterial({ vertexColors: true }));
      zoneMesh.position.y = e;
      group.add(zoneMesh);
    }
    // walls: one box per straight piece
    const pieces = [];
    for (const w of data.walls.filter((w) => w.level === f.level)) {
      for (let i = 0; i + 1 < w.points.length; i++) pieces.push([w.points[i], w.points[i + 1], w.thickness]);
    }
    const outline = f.outline;
    for (let i = 0; i + 1 < outline.length; i++) pieces.push([outline[i], outline[i + 1], 0.3]);
    const walls = new THREE.InstancedMesh(unitBox, new THREE.MeshLambertMaterial({ color: 0xc9c3b6 }), pieces.length);
    pieces.forEach(([[x0, y0], [x1, y1], thick], i) => {
      const length = Math.hypot(x1 - x0, y1 - y0);
      quaternion.setFromAxisAngle(up, Math.atan2(y1 - y0, x1 - x0));
      position.copy(world((x0 + x1) / 2, (y0 + y1) / 2, e + WALL_HEIGHT / 2));
      scale.set(length + thick, WALL_HEIGHT, thick);
      walls.setMatrixAt(i, matrix.compose(position, quaternion, scale));
    });
    group.add(walls);
    // shelves
    const shelves = data.shelves.filter((s) => s.level === f.level);
    const carcass = new THREE.InstancedMesh(unitBox, new THREE.MeshLambertMaterial({ color: 0xffffff }), Math.max(shelves.length, 1));
    carcass.count = shelves.length;
    shelves.forEach((s, i) => {
      quaternion.setFromAxisAngle(up, (s.orientation * Math.PI) / 180);
      position.copy(world(s.x, s.y, e + SHELF_HEIGHT / 2));
      scale.set(s.length, SHELF_HEIGHT, s.depth * 0.3);
      carcass.setMatrixAt(i, matrix.compose(position, quaternion, scale));
      carcass.setColorAt(i, new THREE.Color(0x8d6e4f));
      shelfMeshes.set(s.code, { mesh: carcass, index: i });
    });
    if (carcass.instanceColor) carcass.instanceColor.needsUpdate = true;
    group.add(carcass);
    // points of interest: posts
    const pois = data.pois.filter((p) => p.level === f.level);
    const posts = new THREE.InstancedMesh(new THREE.CylinderGeometry(0.25, 0.25, 1.4, 10), new THREE.MeshLambertMaterial({ color: 0xffffff }), Math.max(pois.length, 1));
    posts.count = pois.length;
    pois.forEach((p, i) => {
      position.copy(world(p.x, p.y, e + (p.type === "seat" ? 0.25 : 0.7)));
      scale.set(1, p.type === "seat" ? 0.35 : 1, 1);
      posts.setMatrixAt(i, matrix.compose(position, quaternion.identity(), scale));
      posts.setColorAt(i, new THREE.Color(POI_COLOURS[p.type] || 0x1f6feb));
    });
    if (posts.instanceColor) posts.instanceColor.needsUpdate = true;
    group.add(posts);
  }

  // books: one instanced mesh per floor, coloured by main class
  const b = data.books;
  const perLevel = new Map();
  for (let i = 0; i < b.id.length; i++) {
    const level = data.shelves[b.shelf[i]].level;
    if (!perLevel.has(level)) perLevel.set(level, []);
    perLevel.get(level).push(i);
  }
  for (const [level, indices] of perLevel) {
    const e = floors.get(level).elevation;
    const mesh = new THREE.InstancedMesh(unitBox, new THREE.MeshLambertMaterial({ color: 0xffffff }), indices.length);
    const ids = new Int32Array(indices.length);
    indices.forEach((i, k) => {
      const s = data.shelves[b.shelf[i]];
      const o = (s.orientation * Math.PI) / 180;
      const along = -s.length / 2 + 0.03 + (b.slot[i] + 0.5) * bw;
      const across = (b.side[i] === 0 ? 1 : -1) * s.depth * 0.3;
      const nx = Math.cos(o + Math.PI / 2);
      const ny = Math.sin(o + Math.PI / 2);
      const x = s.x + Math.cos(o) * along + nx * across;
      const y = s.y + Math.sin(o) * along + ny * across;
      const shelfLevel = SHELF_HEIGHT / s.levels;
      const h = shelfLevel * (0.55 + 0.25 * hash(b.id[i]));
      quaternion.setFromAxisAngle(up, o);
      position.copy(world(x, y, e + 0.06 + (b.level[i] - 1) * shelfLevel + h / 2));
      scale.set(bw * 0.85, h, s.depth * 0.32);
      mesh.setMatrixAt(k, matrix.compose(position, quaternion, scale));
      mesh.setColorAt(k, colours[b.cls[i]]);
      ids[k] = b.id[i];
    });
    mesh.instanceColor.needsUpdate = true;
    mesh.userData.ids = ids;
    mesh.computeBoundingSphere();
    levelGroups.get(level).add(mesh);
    bookMeshes.push(mesh);
  }
  stats.books = b.id.length;

  // the route: arrows on the floor
  const arrowGeometry = new THREE.ConeGeometry(0.28, 0.7, 12);
  arrowGeometry.rotateZ(-Math.PI / 2);
  const arrows = new THREE.InstancedMesh(arrowGeometry, new THREE.MeshLambertMaterial({ color: 0x1f6feb, emissive: 0x0b3d91 }), 600);
  arrows.count = 0;
  arrows.frustumCulled = false;
  scene.add(arrows);
  let highlighted = null;

  // camera and controls
  const camera = new THREE.PerspectiveCamera(60, 1, 0.05, 600);
  const first = data.floors[0];
  const xs = first.outline.map((p) => p[0]);
  const ys = first.outline.map((p) => p[1]);
  const centre = new THREE.Vector3((Math.min(...xs) + Math.max(...xs)) / 2, 0, -(Math.min(...ys) + Math.max(...ys)) / 2);
  const span = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
  camera.position.set(centre.x - span * 0.1, span * 0.75, centre.z + span * 0.75);
  const orbit = new OrbitControls(camera, canvas);
  orbit.target.copy(centre);
  orbit.listenToKeyEvents(canvas);
  orbit.update();

  let walking = false;
  let yaw = 0;
  let pitch = 0;
  let walkLevel = first.level;
  const keys = new Set();
  const held = new Set();

  function setWalking(on) {
    walking = on;
    orbit.enabled = !on;
    const button = form.querySelector("[data-mode=walk]");
    button.setAttribute("aria-pressed", String(on));
    if (on) {
      const entrance = data.pois.find((p) => p.type === "entrance") || data.pois[0];
      walkLevel = entrance ? entrance.level : first.level;
      const start = entrance ? world(entrance.x, entrance.y + 1.5, floors.get(walkLevel).elevation + EYE) : centre.clone().setY(EYE);
      camera.position.copy(start);
      yaw = 0;
      pitch = 0;
      say(text("walk"));
    } else {
      camera.position.set(centre.x - span * 0.1, span * 0.75, centre.z + span * 0.75);
      orbit.target.copy(centre);
      orbit.update();
      say(text("orbit"));
    }
    canvas.focus();
  }

  const KEYMAP = { ArrowUp: "forward", KeyW: "forward", ArrowDown: "back", KeyS: "back", ArrowLeft: "left", KeyA: "left", ArrowRight: "right", KeyD: "right" };
  canvas.addEventListener("keydown", (event) => {
    if (!walking || !KEYMAP[event.code]) return;
    keys.add(KEYMAP[event.code]);
    event.preventDefault();
  });
  canvas.addEventListener("keyup", (event) => keys.delete(KEYMAP[event.code]));
  canvas.addEventListener("blur", () => keys.clear());
  for (const button of root.querySelectorAll("[data-move]")) {
    const move = button.dataset.move;
    button.addEventListener("pointerdown", (event) => { if (!walking) setWalking(true); held.add(move); event.preventDefault(); });
    for (const end of ["pointerup", "pointerleave", "pointercancel"]) button.addEventListener(end, () => held.delete(move));
  }

  // look around while walking: drag with mouse or finger
  let drag = null;
  canvas.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY, moved: 0 };
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    drag.moved += Math.abs(dx) + Math.abs(dy);
    drag.x = event.clientX;
    drag.y = event.clientY;
    if (walking) {
      yaw -= dx * 0.005;
      pitch = Math.max(-1.2, Math.min(1.2, pitch - dy * 0.005));
    }
  });
  canvas.addEventListener("pointerup", (event) => {
    const click = drag && drag.moved < 6;
    drag = null;
    if (click) pick(event);
  });

  // click a book: its card
  const raycaster = new THREE.Raycaster();
  const pointer = new THREE.Vector2();
  async function pick(event) {
    const rect = canvas.getBoundingClientRect();
    pointer.set(((event.clientX - rect.left) / rect.width) * 2 - 1, -((event.clientY - rect.top) / rect.height) * 2 + 1);
    raycaster.setFromCamera(pointer, camera);
    const visible = bookMeshes.filter((m) => m.parent.visible);
    const hit = raycaster.intersectObjects(visible, false)[0];
    if (!hit || hit.instanceId === undefined) return;
    await openCard(hit.object.userData.ids[hit.instanceId]);
  }

  async function openCard(itemId) {
    const r = await fetch(`/twin/items/${itemId}/card`, { credentials: "same-origin" });
    if (!r.ok) return;
    card.innerHTML = await r.text();
    card.hidden = false;
    window.__twin.card = itemId;
    const focusable = card.querySelector("button[type=submit], a");
    if (focusable) focusable.focus();
  }
  card.addEventListener("click", (event) => {
    if (event.target.closest("[data-close-card]")) {
      card.hidden = true;
      canvas.focus();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !card.hidden) { card.hidden = true; canvas.focus(); }
  });

  // routes: arrows every metre and a bit, the goal shelf lit
  function highlight(code) {
    if (highlighted) highlighted.mesh.setColorAt(highlighted.index, new THREE.Color(0x8d6e4f));
    highlighted = shelfMeshes.get(code) || null;
    if (highlighted) {
      highlighted.mesh.setColorAt(highlighted.index, new THREE.Color(0xe4572e));
      highlighted.mesh.instanceColor.needsUpdate = true;
    }
  }

  async function routeTo(goal) {
    const entrance = data.pois.find((p) => p.type === "entrance");
    const from = entrance ? `poi:${entrance.code}` : `poi:${data.pois[0].code}`;
    const params = new URLSearchParams({ from, to: goal, lang: locale });
    const r = await fetch(`/api/v1/libraries/${libraryId}/route?${params}`);
    if (!r.ok) { say(text("notfound")); return null; }
    const route = await r.json();
    let n = 0;
    for (const leg of route.legs) {
      const e = floors.get(leg.level).elevation + 0.35;
      for (let i = 0; i + 1 < leg.points.length; i++) {
        const [x0, y0] = leg.points[i];
        const [x1, y1] = leg.points[i + 1];
        const length = Math.hypot(x1 - x0, y1 - y0);
        quaternion.setFromAxisAngle(up, Math.atan2(y1 - y0, x1 - x0));
        for (let d = 0.6; d < length && n < arrows.instanceMatrix.count; d += 1.3) {
          position.copy(world(x0 + ((x1 - x0) * d) / length, y0 + ((y1 - y0) * d) / length, e));
          arrows.setMatrixAt(n++, matrix.compose(position, quaternion, scale.set(1, 1, 1)));
        }
      }
    }
    arrows.count = n;
    arrows.instanceMatrix.needsUpdate = true;
    const goalShelf = route.to.kind === "shelf" ? route.to.code : null;
    highlight(goalShelf);
    const [gx, gy] = route.to.at;
    const ge = floors.get(route.to.level).elevation;
    if (!walking) {
      orbit.target.copy(world(gx, gy, ge));
      camera.position.copy(world(gx - 8, gy - 10, ge + 12));
      orbit.update();
    }
    showLevel(String(route.legs.length > 1 ? "" : route.to.level));
    say((goalShelf ? text("found").replace("%(code)s", goalShelf) + " " : "") + route.steps.map((s) => s.text).join(" · "));
    window.__twin.route = route;
    return route;
  }

  function showLevel(value) {
    const select = form.querySelector("select[name=level]");
    select.value = value;
    for (const [level, group] of levelGroups) group.visible = value === "" || level <= Number(value);
  }
  const levelSelect = form.querySelector("select[name=level]");
  for (const f of data.floors) {
    const option = document.createElement("option");
    option.value = String(f.level);
    option.textContent = zh ? f.name_zh : f.name_en;
    levelSelect.appendChild(option);
  }
  levelSelect.addEventListener("change", () => showLevel(levelSelect.value));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = new FormData(form).get("q").toString().trim();
    if (!q) return;
    const lower = q.toLowerCase();
    const shelf = data.shelves.find((s) => s.code.toLowerCase() === lower);
    if (shelf) { await routeTo(`shelf:${shelf.code}`); return; }
    const zone = data.zones.find((z) => z.code.toLowerCase() === lower || z.name_en.toLowerCase().includes(lower) || z.name_zh.includes(q));
    if (zone) { await routeTo(`zone:${zone.code}`); return; }
    const r = await fetch(`/api/v1/libraries/${libraryId}/find?${new URLSearchParams({ q })}`);
    if (!r.ok) { say(text("notfound")); return; }
    const found = await r.json();
    await routeTo(`item:${found.item_id}`);
    await openCard(found.item_id);
  });
  form.querySelector("[data-mode=walk]").addEventListener("click", () => setWalking(!walking));

  // the guided tour: through the points of interest and every room, ending at the lecture hall
  let tour = null;
  function startTour() {
    const stops = [];
    const order = ["entrance", "gate", "service_desk", "kiosk", "return_point", "lift"];
    for (const type of order) {
      const p = data.pois.find((q) => q.type === type);
      if (p) stops.push({ name: zh ? p.name_zh : p.name_en, level: p.level, x: p.x, y: p.y });
    }
    const rooms = [...data.zones].sort((a, b) => (a.type === "lecture") - (b.type === "lecture") || a.level - b.level);
    for (const z of rooms) {
      const cx = z.outline.reduce((s, p) => s + p[0], 0) / z.outline.length;
      const cy = z.outline.reduce((s, p) => s + p[1], 0) / z.outline.length;
      stops.push({ name: zh ? z.name_zh : z.name_en, level: z.level, x: cx, y: cy });
    }
    if (walking) setWalking(false);
    tour = { stops, i: -1, t: 1, from: null, to: null };
    showLevel("");
  }
  form.querySelector("[data-tour]").addEventListener("click", startTour);
  canvas.addEventListener("pointerdown", () => { tour = null; });

  function stepTour(dt) {
    if (!tour) return;
    tour.t += dt / 2.5;
    if (tour.t >= 1) {
      tour.i += 1;
      if (tour.i >= tour.stops.length) { tour = null; say(text("orbit")); return; }
      const s = tour.stops[tour.i];
      const e = floors.get(s.level).elevation;
      tour.from = { pos: camera.position.clone(), target: orbit.target.clone() };
      tour.to = { pos: world(s.x - 4, s.y - 7, e + 6), target: world(s.x, s.y, e + 1) };
      tour.t = 0;
      say(`${text("tour")} ${tour.i + 1}/${tour.stops.length}: ${s.name}`);
    }
    const k = tour.t * tour.t * (3 - 2 * tour.t);
    camera.position.lerpVectors(tour.from.pos, tour.to.pos, k);
    orbit.target.lerpVectors(tour.from.target, tour.to.target, k);
  }

  // sizing, VR, the loop
  function resize() {
    const w = canvas.clientWidth || 640;
    const h = canvas.clientHeight || 480;
    renderer.setSize(w, h, false);
    camera.aspect = w / h;
    camera.updateProjectionMatrix();
  }
  new ResizeObserver(resize).observe(canvas);
  resize();
  vrControl(renderer);

  const forward = new THREE.Vector3();
  const side = new THREE.Vector3();
  let last = performance.now();
  let frames = 0;
  stats.buildMs = performance.now() - fetched;
  renderer.setAnimationLoop(() => {
    const now = performance.now();
    const dt = Math.min(0.1, (now - last) / 1000);
    last = now;
    if (walking) {
      const moves = new Set([...keys, ...held]);
      forward.set(-Math.sin(yaw), 0, -Math.cos(yaw));
      side.set(Math.cos(yaw), 0, -Math.sin(yaw));
      const speed = 2.5 * dt;
      if (moves.has("forward")) camera.position.addScaledVector(forward, speed);
      if (moves.has("back")) camera.position.addScaledVector(forward, -speed);
      if (moves.has("right")) camera.position.addScaledVector(side, speed);
      if (moves.has("left")) camera.position.addScaledVector(side, -speed);
      camera.position.y = floors.get(walkLevel).elevation + EYE;
      camera.rotation.set(pitch, yaw, 0, "YXZ");
    } else {
      stepTour(dt);
      orbit.update();
    }
    renderer.render(scene, camera);
    frames += 1;
    if (frames === 1) {
      stats.firstFrameMs = performance.now() - started;
      stats.sinceNavigationMs = performance.now();  // from the page's navigation start
      stats.drawCalls = renderer.info.render.calls;
      canvas.dataset.ready = "1";
      window.__twin.ready = true;
      say(text("ready"));
    }
  });
  window.__twin.routeTo = routeTo;
  window.__twin.camera = () => camera.position.toArray().map((v) => Math.round(v * 100) / 100);
  window.__twin.openCard = openCard;
  window.__twin.project = (itemId) => {
    // where a book is drawn on the screen, for tests: CSS pixels within the canvas
    for (const mesh of bookMeshes) {
      const k = mesh.userData.ids.indexOf(itemId);
      if (k < 0) continue;
      mesh.getMatrixAt(k, matrix);
      position.setFromMatrixPosition(matrix).project(camera);
      const rect = canvas.getBoundingClientRect();
      return { x: (position.x + 1) / 2 * rect.width, y: (1 - position.y) / 2 * rect.height, level: mesh.parent.userData.level };
    }
    return null;
  };
  window.__twin.lookAt = (itemId) => {
    // stand 1.6 m in front of a book, facing it (tests and the "show me" of a search)
    const i = b.id.indexOf(itemId);
    if (i < 0) return false;
    const s = data.shelves[b.shelf[i]];
    const mesh = bookMeshes.find((m) => m.parent.userData.level === s.level);
    const k = mesh.userData.ids.indexOf(itemId);
    mesh.getMatrixAt(k, matrix);
    position.setFromMatrixPosition(matrix);
    const o = (s.orientation * Math.PI) / 180;
    const sign = b.side[i] === 0 ? 1 : -1;
    const out = new THREE.Vector3(Math.cos(o + Math.PI / 2) * sign, 0, -Math.sin(o + Math.PI / 2) * sign);
    if (walking) setWalking(false);
    tour = null;
    orbit.target.copy(position);
    camera.position.copy(position).addScaledVector(out, 1.6);
    camera.position.y += 0.15;
    showLevel(String(s.level));
    orbit.update();
    return true;
  };
  const to = root.dataset.to;
  if (to) routeTo(to);
}

main().catch((err) => {
  say(text("nowebgl"));
  window.__twin.error = String(err);
});

// The headset: a button in the page's words and style (three.js's VRButton is English, white
// on near-white and takes the focus outline away), or a line saying why there is none.
function vrControl(renderer) {
  const slot = document.getElementById("vr-slot");
  const note = (key) => {
    const small = document.createElement("small");
    small.className = "muted";
    small.textContent = text(key);
    slot.replaceChildren(small);
  };
  if (!("xr" in navigator)) { note(window.isSecureContext ? "vrnone" : "vrhttps"); return; }
  navigator.xr.isSessionSupported("immersive-vr").then((supported) => {
    if (!supported) { note("vrnone"); return; }
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = text("vrenter");
    let session = null;
    const ended = () => { session = null; button.textContent = text("vrenter"); };
    button.addEventListener("click", async () => {
      if (session) { session.end(); return; }
      try {
        session = await navigator.xr.requestSession("immersive-vr", {
          optionalFeatures: ["local-floor", "bounded-floor", "layers"],
        });
      } catch (e) { note("vrrefused"); return; }
      session.addEventListener("end", ended);
      await renderer.xr.setSession(session);
      button.textContent = text("vrexit");
    });
    slot.replaceChildren(button);
  }).catch(() => note("vrrefused"));
}
