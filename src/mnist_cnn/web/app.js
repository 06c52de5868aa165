// The page: draw on the pad; the browser prepares the 28x28 digit (preprocess.js), runs the
// network (engine.js) and shows the answer, the input and every layer's output (view.js).
// The model comes from model.js (`mnist-cnn serve` makes it, or `mnist-cnn export --format
// web` writes it). Photos go to the server's /api/predict when there is a server.
// No libraries; nothing loads from elsewhere.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const pad = $("pad");
  const ctx = pad.getContext("2d", { willReadFrequently: true });
  const INK = 20;          // pen width on the 280 px pad: MNIST-like strokes after scaling
  const PHOTO_SIDE = 1024; // photos are scaled down before upload: well under the 2 MB limit
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

  const page = { forwardMs: [] }; // for tests and curious readers: window.mnistPage
  let model = null, cards = {}, server = false;
  let others = [];    // an ensemble's other members: the page answers with the mean of all
  let strokes = [];   // each stroke: [[x, y], ...] in pad pixels; undo pops one
  let current = null; // the stroke being drawn
  let photo = null;   // an uploaded photo shown under the strokes
  let frame = 0, example = 0;

  // ---- drawing -------------------------------------------------------------------------
  function paint() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, pad.width, pad.height);
    if (photo) {
      const s = Math.min(pad.width / photo.width, pad.height / photo.height);
      const w = photo.width * s, h = photo.height * s;
      ctx.drawImage(photo, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    }
    Object.assign(ctx, { strokeStyle: "#111", lineWidth: INK, lineCap: "round", lineJoin: "round" });
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
    photo = null; // drawing starts afresh: a photo is the server's to prepare, not the pad's
    current = [at(ev)];
    strokes.push(current);
    changed();
  });
  pad.addEventListener("pointermove", (ev) => {
    if (!current) return;
    const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
    for (const e of events.length ? events : [ev]) current.push(at(e));
    changed();
  });
  for (const type of ["pointerup", "pointercancel"]) {
    pad.addEventListener(type, () => { if (current) { current = null; changed(); } });
  }

  // Live: the drawing is repainted and predicted at most once per display frame.
  function changed() {
    if (frame) return;
    frame = requestAnimationFrame(() => { frame = 0; paint(); predictPad(); });
  }

  function undo() { if (strokes.length) strokes.pop(); else photo = null; changed(); }
  function clearAll() { strokes = []; photo = null; changed(); }

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
    const digit = EXAMPLES[example++ % EXAMPLES.length];
    strokes = digit.map((s) => smooth(s).map(([x, y]) => [80 + x * 200, 40 + y * 200]));
    photo = null;
    changed();
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

  // ---- predicting, in the browser ---------------------------------------------------------
  function predictPad() {
    if (!model) return;
    if (!strokes.length && !photo) { showIdle(); return; }
    if (photo) return; // the server's answer for the photo stays shown
    try {
      classify(ctx.getImageData(0, 0, pad.width, pad.height));
    } catch (err) {
      if (err instanceof MnistPreprocess.NoDigit) showError(err.message); else throw err;
    }
  }

  // An image (ImageData) through the page's whole pipeline: preprocessing, the network, the
  // pictures. Returns what was shown.
  function classify(image) { return run(MnistPreprocess.toMnist(image)); }

  function run(digit) { // digit: 784 bytes, light ink on black
    const input = Float32Array.from(digit, (v) => v / 255);
    const t0 = performance.now();
    const result = answer(input);
    page.forwardMs.push(performance.now() - t0);
    show(result, digit);
    const probabilities = Array.from(result.probabilities);
    return { input: Array.from(digit), probabilities, label: probabilities.indexOf(Math.max(...probabilities)) };
  }

  // The first network's layer outputs; for an ensemble, the answer (the bars and the last
  // layer's card) is the mean of every member's probabilities, as the server computes it.
  function answer(input) {
    const result = MnistEngine.forward(model, input);
    if (!others.length) return result;
    const mean = Float32Array.from(result.probabilities);
    for (const member of others) {
      MnistEngine.forward(member, input).probabilities.forEach((p, d) => { mean[d] += p; });
    }
    for (let d = 0; d < mean.length; d++) mean[d] /= others.length + 1;
    result.outputs[result.outputs.length - 1].data = mean;
    return { outputs: result.outputs, probabilities: mean };
  }

  function show(result, digit) {
    const probs = result.probabilities;
    let top = 0;
    for (let d = 1; d < probs.length; d++) if (probs[d] > probs[top]) top = d;
    $("label").textContent = String(top);
    $("label").classList.remove("error");
    $("confidence").textContent = `${MnistView.percent(probs[top])} sure it is a ${top}`;
    $("confidence").classList.remove("error");
    drawInput(digit);
    MnistView.setBars($("bars"), probs);
    for (const out of result.outputs) MnistView.drawOutput(cards[out.name], out);
  }

  function showIdle() { reset("Draw a digit to start.", false); }
  function showError(message) { reset(message, true); }
  function reset(message, isError) {
    $("label").textContent = isError ? "–" : "?";
    $("confidence").textContent = message;
    $("confidence").classList.toggle("error", isError);
    drawInput(null);
    MnistView.setBars($("bars"), new Float32Array($("bars").children.length));
    for (const name in cards) MnistView.clearOutput(cards[name]);
  }

  function drawInput(digit) {
    const c = $("input28"), g = c.getContext("2d"), image = g.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      const v = digit ? digit[i] : 0;
      image.data.set([v, v, v, 255], i * 4);
    }
    g.putImageData(image, 0, 0);
  }

  // ---- photos: the server prepares them (decoding, shadows, EXIF), the browser predicts ----
  async function upload(file) {
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
    try {
      const res = await fetch("api/predict", { method: "POST", body: form });
      const data = await res.json();
      if (res.ok) run(Uint8Array.from(data.input.flat()));
      else showError(data.error || `error ${res.status}`);
    } catch (err) {
      showError(`the server did not answer (${err.message})`);
    }
  }

  $("upload").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (file) upload(file);
  });

  // ---- the model ------------------------------------------------------------------------
  function describe(info, layers) {
    const meta = info.meta || {}, acc = (meta.metrics || {}).test_accuracy;
    const params = layers.reduce((sum, L) => sum + L.params, 0);
    $("model-line").textContent = [
      meta.members > 1 && `an ensemble of ${meta.members} networks: the answer is the mean of ` +
        "their probabilities; the layers shown are the first network's",
      meta.dataset && `trained on ${meta.dataset}`,
      typeof acc === "number" && `test accuracy ${MnistView.percent(acc)}`,
      `${params.toLocaleString("en-US")} parameters` + (meta.members > 1 ? " in the first" : ""),
    ].filter(Boolean).join(" · ");
    $("summary").textContent = info.summary || "";
    MnistView.fitText($("summary"));
    const conv = layers.find((L) => L.type === "Conv2D");
    $("filters-card").hidden = !conv;
    if (conv) {
      const [f, k] = [conv.outShape[2], conv.kernel];
      $("filters-title").textContent = `${conv.name}'s ${f} learned ${k[0]}×${k[1]} filters`;
      $("filters-note").textContent = "blue = negative weight, red = positive. Each filter slides " +
        `over the input; its responses are the ${f} maps of ${conv.name} above.`;
      MnistView.drawFilters($("filters"), conv);
    }
  }

  function start() {
    const info = window.MNIST_MODEL;
    try {
      if (!info) throw new Error("model.js is missing or did not load");
      const tensors = MnistEngine.readSafetensors(MnistEngine.decodeBase64(info.weights));
      model = MnistEngine.build(info.architecture, tensors);
      others = (info.members || []).map((m) => MnistEngine.build(
        m.architecture, MnistEngine.readSafetensors(MnistEngine.decodeBase64(m.weights))));
    } catch (err) {
      $("model-line").textContent = `could not load the model: ${err.message}`;
      $("model-line").classList.add("error");
      return;
    }
    server = Boolean(info.server);
    document.body.classList.toggle("served", server);
    document.body.classList.toggle("static", !server);
    describe(info, model.layers);
    cards = MnistView.buildLayers($("layers"), model);
    MnistView.makeBars($("bars"), model.layers[model.layers.length - 1].outShape[0], false);
    paint();
    showIdle();
    Object.assign(page, { model, classify, ready: true, readyMs: performance.now() });
  }

  addEventListener("resize", () => MnistView.fitText($("summary")));
  window.mnistPage = page;
  start();
})();
