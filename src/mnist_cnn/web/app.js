// The page: draw on the pad, ask /api/predict (debounced, one request in flight), show the
// answer, the 28x28 input and every layer's output. No libraries; nothing loads from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");
const INK = 20;          // pen width on the 280 px pad: MNIST-like strokes after scaling
const DEBOUNCE_MS = 120; // live prediction while drawing, at most this often when idle
const PHOTO_SIDE = 1024; // photos are scaled down before upload: well under the 2 MB limit
const MAP_COLS = 8;      // feature maps per row in a layer's grid
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
// Pen strokes for the Example button, in a 0.6 x 1 box (y down), as people write digits.
const EXAMPLES = [
  [[[.32, .02], [.08, .18], [0, .55], [.15, .9], [.35, .98], [.56, .82], [.62, .42], [.5, .1], [.3, .03]]],
  [[[.2, .15], [.36, .02], [.33, .98]]],
  [[[.05, .25], [.18, .05], [.42, .03], [.55, .22], [.45, .48], [.05, .95]], [[.05, .95], [.6, .94]]],
  [[[.05, .12], [.3, .02], [.52, .15], [.48, .36], [.25, .48], [.52, .6], [.55, .82], [.3, .97], [.03, .86]]],
  [[[.38, .02], [.04, .64]], [[.04, .64], [.6, .62]], [[.45, .3], [.43, .98]]],
  [[[.55, .03], [.12, .04]], [[.12, .04], [.08, .45]], [[.08, .45], [.35, .37], [.55, .55], [.54, .82], [.3, .97], [.03, .87]]],
  [[[.48, 0], [.22, .3], [.07, .65], [.15, .92], [.33, .98], [.5, .86], [.47, .66], [.28, .6], [.09, .72]]],
  [[[.03, .05], [.58, .05]], [[.58, .05], [.22, .97]]],
  [[[.5, .14], [.3, .02], [.1, .14], [.18, .36], [.45, .56], [.55, .8], [.32, .98], [.08, .8], [.18, .58], [.45, .38], [.52, .22], [.5, .14]]],
  [[[.52, .2], [.3, .03], [.08, .18], [.1, .4], [.33, .46], [.53, .28]], [[.53, .18], [.5, .6], [.42, .97]]],
];

let strokes = [];   // each stroke: [[x, y], ...] in pad pixels; undo pops one
let current = null; // the stroke being drawn
let photo = null;   // an uploaded photo shown under the strokes
let timer = 0, busy = false, again = false, example = 0;
const cards = {};   // layer name -> {canvas, bars}

// ---- drawing -------------------------------------------------------------------------
function paint() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  if (photo) {
    const s = Math.min(pad.width / photo.width, pad.height / photo.height);
    const w = photo.width * s, h = photo.height * s;
    ctx.drawImage(photo, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  }
  Object.assign(ctx, { strokeStyle: "#111", fillStyle: "#111", lineWidth: INK, lineCap: "round", lineJoin: "round" });
  for (const s of strokes) {
    ctx.beginPath();
    ctx.moveTo(s[0][0], s[0][1]);
    for (const [x, y] of s.slice(1)) ctx.lineTo(x, y);
    if (s.length === 1) ctx.lineTo(s[0][0] + 0.1, s[0][1]); // a dot
    ctx.stroke();
  }
}

function at(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  pad.setPointerCapture(ev.pointerId);
  current = [at(ev)];
  strokes.push(current);
  paint();
  schedule();
});
pad.addEventListener("pointermove", (ev) => {
  if (!current) return;
  const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
  for (const e of events.length ? events : [ev]) current.push(at(e));
  paint();
  schedule();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (current) { current = null; predictSoon(0); } });
}

function undo() {
  if (strokes.length) strokes.pop(); else photo = null;
  paint();
  predictSoon(0);
}
function clearAll() { strokes = []; photo = null; paint(); predictSoon(0); }

function smooth(points, steps = 8) { // Catmull-Rom through the points
  if (points.length < 3) return points;
  const p = [points[0], ...points, points[points.length - 1]], out = [];
  for (let i = 1; i < p.length - 2; i++) {
    for (let k = 0; k < steps; k++) {
      const t = k / steps, t2 = t * t, t3 = t2 * t;
      out.push([0, 1].map((d) => 0.5 * (2 * p[i][d] + (p[i + 1][d] - p[i - 1][d]) * t +
        (2 * p[i - 1][d] - 5 * p[i][d] + 4 * p[i + 1][d] - p[i + 2][d]) * t2 +
        (3 * p[i][d] - p[i - 1][d] - 3 * p[i + 1][d] + p[i + 2][d]) * t3)));
    }
  }
  return [...out, points[points.length - 1]];
}

function drawExample() {
  const digit = EXAMPLES[example++ % 10];
  strokes = digit.map((s) => smooth(s).map(([x, y]) => [80 + x * 200, 40 + y * 200]));
  photo = null;
  paint();
  predictSoon(0);
}

$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", clearAll);
$("example").addEventListener("click", drawExample);
document.addEventListener("keydown", (ev) => {
  if (ev.target.matches("input, textarea") || ev.altKey || ev.metaKey) return;
  const key = ev.key.toLowerCase();
  if (key === "z") { ev.preventDefault(); undo(); }
  else if ((key === "delete" || key === "backspace") && !ev.ctrlKey) { ev.preventDefault(); clearAll(); }
  else if (key === "e" && !ev.ctrlKey) drawExample();
});

// ---- asking the server ---------------------------------------------------------------
function schedule() { predictSoon(DEBOUNCE_MS); }
function predictSoon(ms) { clearTimeout(timer); timer = setTimeout(predict, ms); }

async function predict() {
  if (!strokes.length && !photo) { showIdle(); return; }
  if (busy) { again = true; return; }
  busy = true;
  try {
    const body = JSON.stringify({ image: pad.toDataURL("image/png"), activations: true });
    await answer(fetch("/api/predict", { method: "POST", headers: { "content-type": "application/json" }, body }));
  } finally {
    busy = false;
    if (again) { again = false; predict(); }
  }
}

async function answer(request) {
  try {
    const res = await request;
    const data = await res.json();
    if (res.ok) show(data); else showError(data.error || `error ${res.status}`);
  } catch (err) {
    showError(`the server did not answer (${err.message})`);
  }
}

$("upload").addEventListener("change", async (ev) => {
  const file = ev.target.files[0];
  ev.target.value = "";
  if (!file) return;
  let blob = file;
  try { // scale down and re-encode (EXIF orientation applied) so any phone photo fits
    photo = await createImageBitmap(file);
    const s = Math.min(1, PHOTO_SIDE / Math.max(photo.width, photo.height));
    const c = Object.assign(document.createElement("canvas"), { width: Math.round(photo.width * s), height: Math.round(photo.height * s) });
    c.getContext("2d").drawImage(photo, 0, 0, c.width, c.height);
    blob = await new Promise((done) => c.toBlob(done, "image/jpeg", 0.92));
  } catch { photo = null; } // the server will say what is wrong with it
  strokes = [];
  paint();
  const form = new FormData();
  form.append("file", blob, file.name);
  await answer(fetch("/api/predict?activations=1", { method: "POST", body: form }));
});

// ---- showing the answer --------------------------------------------------------------
function show(data) {
  const top = data.label, p = data.probabilities[top];
  $("label").textContent = String(top);
  $("label").classList.remove("error");
  $("confidence").textContent = `${(p * 100).toFixed(1)}% sure it is a ${top}`;
  $("confidence").classList.remove("error");
  drawInput(data.input);
  setBars($("bars"), data.probabilities);
  for (const layer of data.activations || []) drawLayer(layer);
}

function showIdle() { reset("Draw a digit to start.", false); }
function showError(message) { reset(message, true); }
function reset(message, isError) {
  $("label").textContent = isError ? "–" : "?";
  $("confidence").textContent = message;
  $("confidence").classList.toggle("error", isError);
  drawInput(null);
  setBars($("bars"), new Array(10).fill(0));
  for (const name in cards) {
    const { canvas, bars } = cards[name];
    if (bars) setBars(bars, new Array(10).fill(0));
    else canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }
}

function drawInput(rows) {
  const c = $("input28"), g = c.getContext("2d"), img = g.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    const v = rows ? rows[Math.floor(i / 28)][i % 28] : 0;
    img.data.set([v, v, v, 255], i * 4);
  }
  g.putImageData(img, 0, 0);
}

function makeBars(list, compact) {
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.innerHTML = `<span class="digit">${d}</span><span class="track"><span class="fill"></span></span>` +
      (compact ? "" : `<span class="pct">0%</span>`);
    list.append(li);
  }
}

function setBars(list, probs) {
  const top = probs.indexOf(Math.max(...probs));
  [...list.children].forEach((li, d) => {
    li.querySelector(".fill").style.width = `${(probs[d] * 100).toFixed(1)}%`;
    li.classList.toggle("top", probs[top] > 0 && d === top);
    const pct = li.querySelector(".pct");
    if (pct) pct.textContent = `${(probs[d] * 100).toFixed(probs[d] >= 0.1 ? 0 : 1)}%`;
    li.setAttribute("aria-label", `${d}: ${(probs[d] * 100).toFixed(1)}%`);
  });
}

function viridis(t) {
  const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1), i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
  return VIRIDIS[i].map((a, k) => Math.round(a + (VIRIDIS[i + 1][k] - a) * f));
}

// Draw maps (C, H, W) in a grid, MAP_COLS to a row, one pixel apart; shared scale per layer
// so a strong map looks stronger than a weak one.
function drawMaps(canvas, maps, cols, colour = viridis, scale = null) {
  const C = maps.length, H = maps[0].length, W = maps[0][0].length, rows = Math.ceil(C / cols);
  canvas.width = cols * (W + 1) - 1;
  canvas.height = rows * (H + 1) - 1;
  const g = canvas.getContext("2d"), img = g.createImageData(canvas.width, canvas.height);
  const max = scale || Math.max(1e-6, ...maps.flat(2).map(Math.abs));
  maps.forEach((map, c) => {
    const x0 = (c % cols) * (W + 1), y0 = Math.floor(c / cols) * (H + 1);
    map.forEach((row, y) => row.forEach((v, x) => {
      img.data.set([...colour(v / max), 255], ((y0 + y) * canvas.width + x0 + x) * 4);
    }));
  });
  g.putImageData(img, 0, 0);
}

const bright = (t) => viridis(Math.sqrt(Math.max(t, 0))); // sqrt: weak responses stay visible

function drawLayer(layer) {
  const card = cards[layer.name];
  if (!card) return;
  if (card.bars) { setBars(card.bars, layer.values); return; }
  if (layer.shape.length === 3) { drawMaps(card.canvas, layer.values, MAP_COLS, bright); return; }
  const n = layer.values.length, cols = n > 64 ? 48 : 16; // a vector as a strip of cells
  const grid = [];
  for (let i = 0; i < n; i += cols) grid.push(layer.values.slice(i, i + cols));
  drawMaps(card.canvas, [grid], 1, bright);
}

const EXPLAIN = {
  Conv2D: (s) => `${s[2]} feature maps of ${s[0]}×${s[1]}: one per learned 3×3 filter, ReLU`,
  MaxPooling2D: (s) => `2×2 max pooling: the ${s[2]} maps shrink to ${s[0]}×${s[1]}`,
  Flatten: (s) => `the maps laid out in one row of ${s[0]} numbers`,
  Dense: (s) => (s[0] === 10 ? "softmax: one probability per digit" : `${s[0]} units, ReLU`),
};

function buildLayers(layers) {
  const box = $("layers");
  layers.forEach((layer, i) => {
    const fig = document.createElement("figure");
    fig.className = `card layer kind-${layer.kind.toLowerCase()}`;
    fig.dataset.name = layer.name;
    const shape = `(None, ${layer.shape.join(", ")})`;
    fig.innerHTML = `<figcaption><span class="step">${i + 1}</span> <b>${layer.name}</b> ` +
      `<span class="muted">${layer.kind}</span><code>${shape}</code></figcaption>`;
    const last = i === layers.length - 1;
    const view = document.createElement(last ? "ol" : "canvas");
    view.className = last ? "bars compact" : "pixelated maps";
    if (last) makeBars(view, true);
    else view.setAttribute("aria-label", `${layer.name} output ${shape}`);
    fig.append(view);
    fig.insertAdjacentHTML("beforeend", `<p class="muted small">${EXPLAIN[layer.kind](layer.shape)}</p>`);
    box.append(fig);
    cards[layer.name] = last ? { bars: view } : { canvas: view };
  });
}

function diverging(t) { // blue (negative) - near-black - red (positive)
  const a = Math.min(Math.abs(t), 1);
  return t < 0 ? [30 + 40 * a, 40 + 110 * a, 60 + 195 * a] : [60 + 195 * a, 40 + 50 * a, 30 + 20 * a];
}

async function loadModel() {
  try {
    const info = await (await fetch("/api/model")).json();
    const acc = info.metrics && info.metrics.test_accuracy;
    const params = (info.summary.match(/Total params: ([\d,]+)/) || [])[1];
    $("model-line").textContent = [info.meta.dataset && `trained on ${info.meta.dataset}`,
      typeof acc === "number" && `test accuracy ${(acc * 100).toFixed(2)}%`, params && `${params} parameters`]
      .filter(Boolean).join(" · ");
    $("summary").textContent = info.summary;
    drawMaps($("filters"), info.conv1_filters, MAP_COLS, diverging);
    buildLayers(info.layers);
    makeBars($("bars"), false);
    showIdle();
  } catch (err) {
    $("model-line").textContent = `could not load the model: ${err.message}`;
  }
}

paint();
loadModel();
