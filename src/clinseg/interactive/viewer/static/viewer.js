// clinseg interact — the page's logic (plain JavaScript, no build step, no network beyond this server).
//
// Mouse: left click = foreground click, right click or shift+click = background click; wheel = next/previous
// slice. With "Brush" on: drag to paint, right-drag or shift-drag to erase (axial view only).
// Keys: Ctrl+Z undo, arrow up/down or PageUp/PageDown move through slices.
//
// Views follow clinseg/interactive/viewer/display.py: axial shows rows=Y, cols=X; coronal rows=Z (flipped,
// last slice on top), cols=X; sagittal rows=Z (flipped), cols=Y. A pixel maps back to (z, y, x) below.
//
// Every request carries the session token the server wrote into the page's <meta name="clinseg-token">:
// API calls in the X-Clinseg-Token header, slice images in the token query parameter (security.py).
"use strict";

const el = (id) => document.getElementById(id);
const TOKEN = document.querySelector('meta[name="clinseg-token"]').content;
const view = { axis: 0, index: 0 };
let state = null;
let version = 0;
let stroke = null;

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

// Rows and columns of the current view, and its voxel size in mm (row, col).
function viewGeometry() {
  const [Z, Y, X] = state.shape;
  const [sz, sy, sx] = state.spacing_zyx;
  return [[Y, X, sy, sx], [Z, X, sz, sx], [Z, Y, sz, sy]][view.axis];
}

// Voxel (z, y, x) shown at pixel (row, col) of the current view: inverse of display.slice_view.
function toVolume(row, col) {
  const zLast = state.shape[0] - 1;
  if (view.axis === 0) return [view.index, row, col];
  if (view.axis === 1) return [zLast - row, view.index, col];
  return [zLast - row, col, view.index];
}

function pixelOf(event) {
  const img = el("slice");
  const rect = img.getBoundingClientRect();
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
}

function refreshImage() {
  version += 1;
  const img = el("slice");
  img.src = `/api/slice?axis=${view.axis}&index=${view.index}&h=${state.mask_hash}&v=${version}` +
    `&token=${encodeURIComponent(TOKEN)}`;
  const [rows, cols, srow, scol] = viewGeometry();
  const box = Math.min(window.innerWidth - 360, window.innerHeight - 140, 900);
  const scale = Math.max(box, 256) / Math.max(rows * srow, cols * scol);
  img.style.width = `${Math.round(cols * scol * scale)}px`;
  img.style.height = `${Math.round(rows * srow * scale)}px`;
  el("slice-label").textContent = `${view.index + 1} / ${state.shape[view.axis]}`;
}

function apply(newState) {
  state = newState;
  if (newState.message) say(newState.message);
  showStatus();
  refreshImage();
}

function setSlice(index) {
  const last = state.shape[view.axis] - 1;
  view.index = Math.min(last, Math.max(0, index));
  el("slider").value = view.index;
  refreshImage();
}

function setAxis(axis) {
  view.axis = axis;
  el("slider").max = state.shape[axis] - 1;
  setSlice(Math.floor(state.shape[axis] / 2));
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
  const background = event.button === 2 || event.shiftKey;
  const [row, col] = pixelOf(event);
  if (el("brush").checked) {
    if (view.axis !== 0) { say("the brush paints in the axial view: switch the view to axial", true); return; }
    stroke = { erase: background, points: [[row, col]] };
    return;
  }
  if (event.button !== 0 && event.button !== 2) return;
  const [z, y, x] = toVolume(row, col);
  act("/api/click", { z, y, x, foreground: !background }, "segmenting…");
}

function onMouseMove(event) {
  if (!stroke) return;
  const [row, col] = pixelOf(event);
  const last = stroke.points[stroke.points.length - 1];
  if (last[0] !== row || last[1] !== col) stroke.points.push([row, col]);
}

function onMouseUp() {
  if (!stroke) return;
  const body = { z: view.index, points: stroke.points, radius: Number(el("radius").value) || 1,
                 erase: stroke.erase };
  stroke = null;
  act("/api/brush", body);
}

function onWheel(event) {
  event.preventDefault();
  setSlice(view.index + (event.deltaY > 0 ? -1 : 1));
}

function onKey(event) {
  if (event.target.tagName === "INPUT" && event.target.type !== "range") return;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
    event.preventDefault();
    act("/api/undo");
  } else if (event.key === "ArrowUp" || event.key === "PageUp") {
    event.preventDefault();
    setSlice(view.index + 1);
  } else if (event.key === "ArrowDown" || event.key === "PageDown") {
    event.preventDefault();
    setSlice(view.index - 1);
  }
}

async function start() {
  try {
    state = await api("/api/state");
  } catch (error) {
    say(`cannot reach the viewer server: ${error.message}`, true);
    return;
  }
  el("case").textContent = `— ${state.case}`;
  document.title = `clinseg interact — ${state.case}`;
  const select = el("structure");
  for (const name of state.structures) select.add(new Option(name, name));
  select.value = state.structure;
  el("prediction-path").textContent = state.prediction_path || "(no folder given)";
  el("dataset-path").textContent = state.dataset_path || "(no folder given)";
  showStatus();
  setAxis(0);

  const img = el("slice");
  img.addEventListener("mousedown", onMouseDown);
  img.addEventListener("contextmenu", (event) => event.preventDefault());
  img.addEventListener("wheel", onWheel, { passive: false });
  window.addEventListener("mousemove", onMouseMove);
  window.addEventListener("mouseup", onMouseUp);
  window.addEventListener("keydown", onKey);
  window.addEventListener("resize", refreshImage);
  el("slider").addEventListener("input", () => setSlice(Number(el("slider").value)));
  el("axis").addEventListener("change", () => setAxis(Number(el("axis").value)));
  select.addEventListener("change", () => act("/api/select", { structure: select.value }));
  el("undo").addEventListener("click", () => act("/api/undo"));
  el("clear").addEventListener("click", () => {
    if (confirm(`Forget every click and stroke of ${state.structure}?`)) act("/api/clear");
  });
  el("brush").addEventListener("change", () => img.classList.toggle("brush", el("brush").checked));
  el("save").addEventListener("click", () => act("/api/save", {}, "saving…"));
  el("save-corrections").addEventListener("click", () => act("/api/save-corrections", {}, "saving…"));
  say("left click on the structure to segment it");
}

start();
