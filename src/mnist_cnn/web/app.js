// The page: draw on the pad (pad.js); the browser prepares the 28x28 digit (preprocess.js),
// runs the network (engine.js) and shows the answer, how far to trust it, why (saliency from
// gradient.js), the input and every layer's output (view.js), and the arithmetic behind any
// clicked map pixel (detail.js), in the reader's language (i18n.js).
// The model comes from model.js (`mnist-cnn serve` makes it, or `mnist-cnn export --format
// web` writes it). Photos go to the server's /api/predict when there is a server.
// No libraries; nothing loads from elsewhere.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const t = MnistI18n.t, fill = MnistI18n.fill;
  const PHOTO_SIDE = 1024; // photos are scaled down before upload: well under the 2 MB limit
  const IG_STEPS = 32; // integrated gradients' trapezoid intervals, as in the report

  const page = { forwardMs: [], saliencyMs: [] }; // for tests and curious readers: window.mnistPage
  let model = null, info = null, cards = {}, detail = null;
  let others = []; // an ensemble's other members: the page answers with the mean of all
  let shown = { message: "answer.start" }; // what the answer card shows: a result or a message
  let why = 0; // the saliency computation under way; a newer drawing replaces it
  const pad = MnistPad.create($("pad"), { undo: $("undo"), clear: $("clear"), example: $("example") }, predictPad);

  // ---- predicting, in the browser ---------------------------------------------------------
  function predictPad() {
    if (!model) return;
    if (pad.empty()) { showMessage("answer.start", {}, false); return; }
    if (pad.state.photo) return; // the server's answer for the photo stays shown
    try {
      classify(pad.pixels());
    } catch (err) {
      if (err instanceof MnistPreprocess.NoDigit) showMessage(`nodigit.${err.code}`, {}, true); else throw err;
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
    shown = { result, digit, top: top(result.probabilities) };
    render();
    explain(input, digit);
    const probabilities = Array.from(result.probabilities);
    return { input: Array.from(digit), probabilities, label: shown.top };
  }

  // The first network's layer outputs; for an ensemble, the answer (the probabilities and
  // the last layer's card) is the mean of every member's probabilities, as the server's.
  function answer(input) {
    const result = MnistEngine.forward(model, input);
    if (!others.length) return result;
    const mean = Float32Array.from(result.probabilities);
    for (const member of others) {
      MnistEngine.forward(member, input).probabilities.forEach((p, d) => { mean[d] += p; });
    }
    for (let d = 0; d < mean.length; d++) mean[d] /= others.length + 1;
    result.outputs[result.outputs.length - 1].data = mean;
    return { ...result, probabilities: mean };
  }

  const top = (p) => p.reduce((best, v, d) => (v > p[best] ? d : best), 0);

  // ---- why: integrated gradients for the answer, computed in slices between frames ---------
  function explain(input, digit) {
    const mine = ++why, t0 = performance.now();
    $("why").classList.add("pending");
    MnistGradient.integratedGradientsAsync(model, input, IG_STEPS, shown.top, () => mine !== why).then((att) => {
      if (!att) return;
      page.saliencyMs.push(performance.now() - t0);
      page.saliency = { values: Array.from(att.values), target: att.target, input: Array.from(digit) };
      shown.why = att;
      drawWhy();
    });
  }

  function drawWhy() {
    const att = shown.result && shown.why;
    $("why").classList.toggle("pending", Boolean(shown.result) && !att);
    MnistView.drawSaliency($("why28"), att ? shown.digit : null, att ? att.values : null);
    $("why-caption").textContent = att ? t("why.caption", { d: att.target, steps: IG_STEPS }) : t("why.empty");
  }

  // ---- showing ------------------------------------------------------------------------------
  function render() { // the answer card and the maps, from `shown`, in the current language
    const r = shown.result;
    $("label").textContent = r ? String(shown.top) : shown.error ? "–" : "?";
    $("label").classList.remove("error");
    if (r) fill($("confidence"), "answer.sure", { p: MnistView.percent(r.probabilities[shown.top]), d: shown.top });
    else fill($("confidence"), shown.message, shown.fields || {});
    $("confidence").classList.toggle("error", Boolean(shown.error));
    trust(r ? r.probabilities[shown.top] : null);
    drawInput(r ? shown.digit : null);
    drawWhy();
    MnistView.setBars($("bars"), r ? r.probabilities : new Float32Array($("bars").children.length));
    for (const name in cards) {
      if (r) MnistView.drawOutput(cards[name], r.outputs[cards[name].index]); else MnistView.clearOutput(cards[name]);
    }
    detail.update(r || null);
  }

  function showMessage(id, fields, isError) {
    why++; // nothing to explain
    shown = { message: id, fields, error: isError };
    render();
  }

  // "Not sure" below the line `mnist-cnn report` chose on held-out images (model.json); said
  // plainly when there is no line yet.
  function trust(p) {
    const cal = info.calibration, note = $("trust"), cmd = MnistI18n.code("mnist-cnn report");
    const unsure = Boolean(cal && !cal.stale && p != null && p < cal.not_sure_below);
    $("label").classList.toggle("unsure", unsure);
    note.classList.toggle("unsure", unsure);
    note.classList.toggle("uncalibrated", !cal || Boolean(cal.stale));
    if (!cal || cal.stale) { fill(note, cal ? "trust.stale" : "trust.none", { cmd }); return; }
    const fields = { line: MnistView.percent(cal.not_sure_below), acc: MnistView.percent(cal.target_accuracy), n: cal.images.toLocaleString("en-US") };
    fields.where = t(`trust.${cal.fitted_on}`, fields);
    if (cal.not_sure_below <= 0) fill(note, "trust.zero", fields);
    else fill(note, p == null ? "trust.idle" : unsure ? "trust.unsure" : "trust.sure", { ...fields, p: p == null ? "" : MnistView.percent(p) });
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
    let blob = file, photo = null;
    try { // scale down and re-encode (EXIF orientation applied) so any phone photo fits
      photo = await createImageBitmap(file);
      const s = Math.min(1, PHOTO_SIDE / Math.max(photo.width, photo.height));
      const c = Object.assign(document.createElement("canvas"), { width: Math.round(photo.width * s), height: Math.round(photo.height * s) });
      c.getContext("2d").drawImage(photo, 0, 0, c.width, c.height);
      blob = await new Promise((done) => c.toBlob(done, "image/jpeg", 0.92));
    } catch { photo = null; } // the server will say what is wrong with it
    pad.setPhoto(photo);
    const form = new FormData();
    form.append("file", blob, file.name);
    try {
      const res = await fetch("api/predict", { method: "POST", body: form });
      const data = await res.json();
      if (res.ok) run(Uint8Array.from(data.input.flat()));
      else if (res.status === 422 && /^no digit found/.test(data.error || "")) showMessage("nodigit.photo", {}, true);
      else showMessage("photo.refused", { error: MnistI18n.code(data.error || String(res.status)) }, true);
    } catch (err) {
      showMessage("photo.no_answer", { error: MnistI18n.code(err.message) }, true);
    }
  }

  $("upload").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    ev.target.value = "";
    if (file) upload(file);
  });

  // ---- the model ------------------------------------------------------------------------
  function describe() {
    const meta = info.meta || {}, acc = (meta.metrics || {}).test_accuracy;
    // every network's parameters: an ensemble's count is all of its members'
    const params = [model, ...others].reduce(
      (sum, net) => net.layers.reduce((s, L) => s + L.params, sum), 0);
    $("model-line").textContent = [meta.members > 1 && t("model.ensemble", { n: meta.members }),
      meta.dataset && t("model.dataset", { dataset: meta.dataset }),
      typeof acc === "number" && t("model.accuracy", { acc: MnistView.percent(acc) }),
      t(others.length ? "model.params_all" : "model.params",
        { n: params.toLocaleString("en-US") })].filter(Boolean).join(" · ");
    $("summary").textContent = info.summary || "";
    MnistView.fitText($("summary"));
    const conv = model.layers.find((L) => L.type === "Conv2D");
    $("filters-card").hidden = !conv;
    if (conv) {
      const fields = { name: conv.name, f: conv.outShape[2], k: MnistView.times(conv.kernel) };
      $("filters-title").textContent = t("filters.title", fields);
      $("filters-note").textContent = t("filters.note", fields);
      MnistView.drawFilters($("filters"), conv);
    }
  }

  function relabel() { // the language changed: every word again, no numbers recomputed
    if (!model) return;
    describe();
    MnistView.relabel(cards);
    render();
  }

  function start() {
    info = window.MNIST_MODEL;
    delete $("model-line").dataset.i18n; // from now on it says what the model is
    MnistI18n.apply();
    MnistI18n.onChange(relabel);
    try {
      if (!info) throw new Error("model.js is missing or did not load");
      const tensors = MnistEngine.readSafetensors(MnistEngine.decodeBase64(info.weights));
      model = MnistEngine.build(info.architecture, tensors);
      others = (info.members || []).map((m) => MnistEngine.build(
        m.architecture, MnistEngine.readSafetensors(MnistEngine.decodeBase64(m.weights))));
    } catch (err) {
      fill($("model-line"), "model.error", { error: MnistI18n.code(err.message) });
      $("model-line").classList.add("error");
      return;
    }
    document.body.classList.toggle("served", Boolean(info.server));
    document.body.classList.toggle("static", !info.server);
    cards = MnistView.buildLayers($("layers"), model);
    detail = MnistDetail.controller(cards, model);
    describe();
    MnistView.makeBars($("bars"), model.layers[model.layers.length - 1].outShape[0], false);
    pad.paint();
    render();
    Object.assign(page, { model, classify, detail, ready: true, readyMs: performance.now() });
  }

  addEventListener("resize", () => MnistView.fitText($("summary")));
  window.mnistPage = page;
  start();
})();
