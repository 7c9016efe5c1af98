// clinseg interact — the page's logic (plain JavaScript, no build step, no network beyond this server).
//
// Mouse on the image: left click = foreground click, right click or shift+click = background click; wheel =
// next/previous slice. With "Brush" on: drag to paint, right-drag or shift-drag to erase (any view).
// Ctrl+drag (Cmd+drag) = window/level: right widens the window, down raises the level. Ctrl+wheel = zoom at
// the cursor; middle-drag or Alt+drag = pan. Neither gesture ever clicks.
// Keys: Ctrl+Z undo, arrow up/down or PageUp/PageDown move through slices, + / - zoom, 0 fit.
//
// The server draws each view (a PNG) in radiological orientation on its display grid, whatever the image's
// stored direction (orientation.py); the page sends what it shows (view, slice, window, level, opacity) and
// where the person pointed as a pixel (row, col) of that view — the server maps it to the stored voxel.
// Zoom and pan are CSS on the image; the orientation letters and the legend are HTML.
//
// Every request carries the session token the server wrote into the page's <meta name="clinseg-token">:
// API calls in the X-Clinseg-Token header, slice images in the token query parameter (security.py).
"use strict";

const el = (id) => document.getElementById(id);
const TOKEN = document.querySelector('meta[name="clinseg-token"]').content;
const MIN_ZOOM = 0.25;
const MAX_ZOOM = 16;
const ZOOM_STEP = 1.25;
// Window/level drag: 256 pixels to the right double the width; 256 pixels down raise the level by one width.
const DRAG_PIXELS = 256;
const view = { axis: 0, index: 0, zoom: 1, panX: 0, panY: 0, width: 1, level: 0, opacity: 0.4 };
let state = null;
let version = 0;
let stroke = null;
let drag = null;
let frame = 0;

async function api(path, body) {
  const headers = { "X-Clinseg-Token": TOKEN };
  const options = body === undefined ? { headers } : {
    method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error || response.statusText);
  return payload;
}

function say(text, isError) {
  el("message").textContent = text || "";
  el("message").className = isError ? "error" : "";
}

// Rows and columns of the current view, and its voxel size in mm (row, col): of the display grid, whose
// axes run to the patient's head, back and left.
function viewGeometry() {
  const [S, P, L] = state.display.shape;
  const [ss, sp, sl] = state.display.spacing;
  return [[P, L, sp, sl], [S, L, ss, sl], [S, P, ss, sp]][view.axis];
}

// Pixel (row, col) of the current view under the mouse.
function pixelOf(event) {
  const rect = el("slice").getBoundingClientRect();
  const [rows, cols] = viewGeometry();
  const col = Math.floor(((event.clientX - rect.left) / rect.width) * cols);
  const row = Math.floor(((event.clientY - rect.top) / rect.height) * rows);
  return [Math.min(rows - 1, Math.max(0, row)), Math.min(cols - 1, Math.max(0, col))];
}

function showStatus() {
  const s = state;
  el("status").textContent =
    `${s.structure}: ${s.voxels} voxels (${s.volume_ml} ml) · ${s.fg_clicks} foreground / ${s.bg_clicks} ` +
    `background clicks · ${s.strokes} strokes · touched: ${s.touched.join(", ") || "none"} · ` +
    `mask ${s.mask_hash}`;
  el("undo").disabled = !s.can_undo;
  for (const item of el("legend").children) {
    const name = item.dataset.structure;
    item.classList.toggle("active", name === s.structure);
    item.classList.toggle("touched", s.touched.includes(name));
    item.setAttribute("aria-current", name === s.structure ? "true" : "false");
  }
  el("structure").value = s.structure;
}

// The image's size at zoom 1: the whole slice fits the viewport, with its physical aspect ratio.
function fitSize() {
  const viewport = el("viewport");
  const [rows, cols, srow, scol] = viewGeometry();
  const scale = Math.min(viewport.clientWidth / (cols * scol), viewport.clientHeight / (rows * srow));
  return [cols * scol * scale, rows * srow * scale];
}

function layout() {
  const viewport = el("viewport");
  const img = el("slice");
  const [w0, h0] = fitSize();
  const w = w0 * view.zoom;
  const h = h0 * view.zoom;
  img.style.width = `${w}px`;
  img.style.height = `${h}px`;
  img.style.left = `${(viewport.clientWidth - w) / 2 + view.panX}px`;
  img.style.top = `${(viewport.clientHeight - h) / 2 + view.panY}px`;
  el("zoom-label").textContent = `${Math.round(view.zoom * 100)} %`;
  const [top, bottom, left, right] = state.display.markers[view.axis];
  el("mark-top").textContent = top;
  el("mark-bottom").textContent = bottom;
  el("mark-left").textContent = left;
  el("mark-right").textContent = right;
}

const round4 = (value) => Number(Number(value).toPrecision(4));

function sliceUrl() {
  version += 1;
  return `/api/slice?axis=${view.axis}&index=${view.index}&width=${view.width}&level=${view.level}` +
    `&opacity=${view.opacity}&h=${state.mask_hash}&v=${version}&token=${encodeURIComponent(TOKEN)}`;
}

function refreshImage() {
  layout();
  el("slice").src = sliceUrl();
  el("slice-label").textContent = `${view.index + 1} / ${state.display.shape[view.axis]}`;
}

// Coalesce redraws while dragging: at most one slice request per animation frame.
function scheduleRefresh() {
  if (frame) return;
  frame = requestAnimationFrame(() => { frame = 0; refreshImage(); });
}

function apply(newState) {
  state = newState;
  if (newState.message) say(newState.message);
  showStatus();
  refreshImage();
}

function setSlice(index) {
  const last = state.display.shape[view.axis] - 1;
  view.index = Math.min(last, Math.max(0, index));
  el("slider").value = view.index;
  refreshImage();
}

function setAxis(axis) {
  view.axis = axis;
  el("axis").value = String(axis);
  el("slider").max = state.display.shape[axis] - 1;
  setSlice(Math.floor(state.display.shape[axis] / 2));
}

// Window: preset is the name of a CT preset, "auto" (the image's own percentile window) or "custom".
function setWindow(width, level, preset) {
  if (!(width > 0) || !Number.isFinite(level)) return;
  view.width = round4(width);
  view.level = round4(level);
  el("win-width").value = view.width;
  el("win-level").value = view.level;
  el("preset").value = preset;
  scheduleRefresh();
}

function choosePreset(name) {
  if (name === "auto") {
    setWindow(state.display.window.width, state.display.window.level, "auto");
  } else if (state.display.presets[name]) {
    const [width, level] = state.display.presets[name];
    setWindow(width, level, name);
  }
}

function zoomAt(factor, x, y) {
  const viewport = el("viewport");
  const W = viewport.clientWidth;
  const H = viewport.clientHeight;
  const cx = x === undefined ? W / 2 : x;
  const cy = y === undefined ? H / 2 : y;
  const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, view.zoom * factor));
  const f = zoom / view.zoom;
  const [w0, h0] = fitSize();
  const left = (W - w0 * view.zoom) / 2 + view.panX; // the point under (cx, cy) stays there
  const top = (H - h0 * view.zoom) / 2 + view.panY;
  view.panX = cx - (cx - left) * f - (W - w0 * zoom) / 2;
  view.panY = cy - (cy - top) * f - (H - h0 * zoom) / 2;
  view.zoom = zoom;
  layout();
}

function fit() {
  view.zoom = 1;
  view.panX = 0;
  view.panY = 0;
  layout();
}

async function act(path, body, pending) {
  if (pending) say(pending);
  try {
    apply(await api(path, body || {}));
    if (pending && !state.message) say("");
  } catch (error) {
    say(error.message, true);
  }
}

function onMouseDown(event) {
  event.preventDefault();
  if (event.button === 1 || (event.button === 0 && event.altKey)) {
    drag = { kind: "pan", x: event.clientX, y: event.clientY, panX: view.panX, panY: view.panY };
    el("viewport").classList.add("panning");
    return;
  }
  if (event.button === 0 && (event.ctrlKey || event.metaKey)) {
    drag = { kind: "window", x: event.clientX, y: event.clientY, width: view.width, level: view.level };
    el("viewport").classList.add("windowing");
    return;
  }
  if (event.target !== el("slice") || (event.button !== 0 && event.button !== 2)) return;
  const background = event.button === 2 || event.shiftKey;
  const [row, col] = pixelOf(event);
  if (el("brush").checked) {
    stroke = { erase: background, points: [[row, col]] };
    return;
  }
  act("/api/click", { axis: view.axis, index: view.index, row, col, foreground: !background }, "segmenting…");
}

function onMouseMove(event) {
  if (drag && drag.kind === "pan") {
    view.panX = drag.panX + event.clientX - drag.x;
    view.panY = drag.panY + event.clientY - drag.y;
    layout();
  } else if (drag && drag.kind === "window") {
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    setWindow(drag.width * 2 ** (dx / DRAG_PIXELS), drag.level + (dy * drag.width) / DRAG_PIXELS, "custom");
  } else if (stroke) {
    const [row, col] = pixelOf(event);
    const last = stroke.points[stroke.points.length - 1];
    if (last[0] !== row || last[1] !== col) stroke.points.push([row, col]);
  }
}

function onMouseUp() {
  if (drag) {
    el("viewport").classList.remove("panning", "windowing");
    drag = null;
    return;
  }
  if (!stroke) return;
  const body = { axis: view.axis, index: view.index, points: stroke.points,
                 radius: Number(el("radius").value) || 1, erase: stroke.erase };
  stroke = null;
  act("/api/brush", body);
}

function onWheel(event) {
  event.preventDefault();
  if (event.ctrlKey || event.metaKey) {
    const rect = el("viewport").getBoundingClientRect();
    zoomAt(event.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP, event.clientX - rect.left, event.clientY - rect.top);
  } else {
    setSlice(view.index + (event.deltaY > 0 ? -1 : 1));
  }
}

function onKey(event) {
  if (event.target.tagName === "INPUT" && event.target.type !== "range" && event.target.type !== "checkbox") return;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    act("/api/undo");
  } else if (event.key === "ArrowUp" || event.key === "PageUp") {
    event.preventDefault();
    setSlice(view.index + 1);
  } else if (event.key === "ArrowDown" || event.key === "PageDown") {
    event.preventDefault();
    setSlice(view.index - 1);
  } else if (event.key === "+" || event.key === "=") {
    zoomAt(ZOOM_STEP);
  } else if (event.key === "-") {
    zoomAt(1 / ZOOM_STEP);
  } else if (event.key === "0") {
    fit();
  }
}

function buildLegend() {
  const legend = el("legend");
  for (const name of state.structures) {
    const item = document.createElement("li");
    item.dataset.structure = name;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = state.display.colours[name];
    item.append(swatch, name);
    item.addEventListener("click", () => act("/api/select", { structure: name }));
    legend.append(item);
  }
}

function buildPresets() {
  const select = el("preset");
  const names = Object.keys(state.display.presets);
  for (const name of names) {
    const [width, level] = state.display.presets[name];
    select.add(new Option(`${name} (W${width} L${level})`, name));
  }
  if (!state.display.ct_like) select.add(new Option("auto (1st-99th percentile)", "auto"));
  select.add(new Option("custom", "custom"));
  setWindow(state.display.window.width, state.display.window.level, names.length ? names[0] : "auto");
}

async function start() {
  try {
    state = await api("/api/state");
  } catch (error) {
    say(`cannot reach the viewer server: ${error.message}`, true);
    return;
  }
  el("case").textContent = `— ${state.case}`;
  el("stored").textContent = `(array x, y, z run to ${state.display.stored_toward.split("").join(", ")}; ` +
    "shown radiological)";
  document.title = `clinseg interact — ${state.case}`;
  const select = el("structure");
  for (const name of state.structures) select.add(new Option(name, name));
  buildLegend();
  buildPresets();
  el("opacity-label").textContent = `${el("opacity").value} %`;
  el("prediction-path").textContent = state.prediction_path || "(no folder given)";
  el("dataset-path").textContent = state.dataset_path || "(no folder given)";
  showStatus();
  setAxis(0);

  const viewport = el("viewport");
  viewport.addEventListener("mousedown", onMouseDown);
  viewport.addEventListener("contextmenu", (event) => event.preventDefault());
  viewport.addEventListener("auxclick", (event) => event.preventDefault());
  viewport.addEventListener("wheel", onWheel, { passive: false });
  window.addEventListener("mousemove", onMouseMove);
  window.addEventListener("mouseup", onMouseUp);
  window.addEventListener("keydown", onKey);
  window.addEventListener("resize", layout);
  el("slider").addEventListener("input", () => setSlice(Number(el("slider").value)));
  el("axis").addEventListener("change", () => { fit(); setAxis(Number(el("axis").value)); });
  select.addEventListener("change", () => act("/api/select", { structure: select.value }));
  el("preset").addEventListener("change", () => choosePreset(el("preset").value));
  for (const id of ["win-width", "win-level"]) {
    el(id).addEventListener("change", () => setWindow(Number(el("win-width").value),
                                                      Number(el("win-level").value), "custom"));
  }
  el("opacity").addEventListener("input", () => {
    view.opacity = Number(el("opacity").value) / 100;
    el("opacity-label").textContent = `${el("opacity").value} %`;
    scheduleRefresh();
  });
  el("zoom-in").addEventListener("click", () => zoomAt(ZOOM_STEP));
  el("zoom-out").addEventListener("click", () => zoomAt(1 / ZOOM_STEP));
  el("zoom-fit").addEventListener("click", fit);
  el("undo").addEventListener("click", () => act("/api/undo"));
  el("clear").addEventListener("click", () => {
    if (confirm(`Forget every click and stroke of ${state.structure}?`)) act("/api/clear");
  });
  el("brush").addEventListener("change", () => el("slice").classList.toggle("brush", el("brush").checked));
  el("save").addEventListener("click", () => act("/api/save", {}, "saving…"));
  el("save-corrections").addEventListener("click", () => act("/api/save-corrections", {}, "saving…"));
  say("left click on the structure to segment it");
}

start();
