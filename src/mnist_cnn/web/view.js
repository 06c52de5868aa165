// What the page draws: probability bars, feature maps, vectors as strips, filters, the layer
// cards with their captions. Knows nothing about where the numbers come from.
// A classic script; defines the global `MnistView`.
"use strict";

var MnistView = (function () {
  const MAP_COLS = 8; // feature maps per row in a layer's grid
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  // The one way a probability is written on the page: one decimal, and never "100.0%" or
  // "0.0%" for a value that is not exactly certain or impossible.
  function percent(p) {
    if (p >= 0.9995) return p >= 1 ? "100%" : ">99.9%";
    if (p < 0.0005) return p <= 0 ? "0%" : "<0.1%";
    return `${(p * 100).toFixed(1)}%`;
  }

  function viridis(t) {
    const x = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1);
    const i = Math.min(Math.floor(x), VIRIDIS.length - 2), f = x - i;
    return VIRIDIS[i].map((a, k) => Math.round(a + (VIRIDIS[i + 1][k] - a) * f));
  }
  const bright = (t) => viridis(Math.sqrt(Math.max(t, 0))); // sqrt: weak responses stay visible
  function diverging(t) { // blue (negative) - near-black - red (positive)
    const a = Math.min(Math.abs(t), 1);
    return t < 0 ? [30 + 40 * a, 40 + 110 * a, 60 + 195 * a] : [60 + 195 * a, 40 + 50 * a, 30 + 20 * a];
  }

  // Colour tables: 2 * STEPS + 1 entries for t in -1..1, so a picture costs a lookup a pixel.
  const STEPS = 255;
  function table(colour) {
    const lut = new Uint8ClampedArray((2 * STEPS + 1) * 3);
    for (let i = 0; i <= 2 * STEPS; i++) lut.set(colour(i / STEPS - 1), i * 3);
    return lut;
  }
  const BRIGHT = table(bright), DIVERGING = table(diverging);

  // ---- bars ----------------------------------------------------------------------------
  function makeBars(list, n, compact) {
    list.replaceChildren();
    for (let d = 0; d < n; d++) {
      const li = document.createElement("li");
      li.innerHTML = `<span class="digit">${d}</span><span class="track"><span class="fill"></span></span>` +
        (compact ? "" : `<span class="pct">${percent(0)}</span>`);
      list.append(li);
    }
  }

  function setBars(list, probs) {
    let top = 0;
    for (let d = 1; d < probs.length; d++) if (probs[d] > probs[top]) top = d;
    [...list.children].forEach((li, d) => {
      const p = probs[d] || 0;
      li.querySelector(".fill").style.width = `${(p * 100).toFixed(2)}%`;
      li.classList.toggle("top", probs[top] > 0 && d === top);
      const pct = li.querySelector(".pct");
      if (pct) pct.textContent = percent(p);
      li.setAttribute("aria-label", `${d}: ${percent(p)}`);
    });
  }

  // ---- pictures of numbers ---------------------------------------------------------------
  // `count` cells of h x w from `data` (cell-major), in a grid of `cols`, one pixel apart.
  // One scale per layer, so a strong map looks stronger than a weak one; values below zero
  // (layers without ReLU) get the diverging colours.
  function drawCells(canvas, data, count, h, w, cols) {
    sizeCells(canvas, count, h, w, cols);
    const g = canvas.getContext("2d"), image = g.createImageData(canvas.width, canvas.height);
    const look = scaleOf(data, count * h * w), px = image.data;
    for (let c = 0; c < count; c++) {
      const x0 = (c % cols) * (w + 1), y0 = Math.floor(c / cols) * (h + 1);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          px.set(colour(look, data[(c * h + y) * w + x]), ((y0 + y) * canvas.width + x0 + x) * 4);
        }
      }
    }
    g.putImageData(image, 0, 0);
  }

  // One layer's colour scale: its largest magnitude, and whether it has values below zero.
  function scaleOf(data, n = data.length) {
    let max = 1e-6, signed = false;
    for (let i = 0; i < n; i++) { max = Math.max(max, Math.abs(data[i])); signed = signed || data[i] < 0; }
    return { max, lut: signed ? DIVERGING : BRIGHT };
  }

  function colour(look, v) { // -> [r, g, b, 255]
    const i = 3 * Math.round((Math.max(-1, Math.min(1, v / look.max)) + 1) * STEPS);
    return [look.lut[i], look.lut[i + 1], look.lut[i + 2], 255];
  }

  // Which map cell a point of a grid picture is on: {cell, y, x}, or null on a gap.
  function cellAt(canvas, shape, clientX, clientY) {
    const g = grid(shape), r = canvas.getBoundingClientRect();
    const px = Math.floor((clientX - r.left) * canvas.width / r.width);
    const py = Math.floor((clientY - r.top) * canvas.height / r.height);
    const col = Math.floor(px / (g.w + 1)), row = Math.floor(py / (g.h + 1));
    const x = px - col * (g.w + 1), y = py - row * (g.h + 1), cell = row * g.cols + col;
    if (px < 0 || py < 0 || x >= g.w || y >= g.h || col >= g.cols || cell >= g.count) return null;
    return { cell, y, x };
  }

  // The digit in grey with the attributions over it: red pushed towards the class, blue
  // against; opacity (|a| / strongest) ** 0.7 so that weaker pixels still show.
  function drawSaliency(canvas, digit, values) {
    const g = canvas.getContext("2d"), image = g.createImageData(canvas.width, canvas.height);
    const max = values ? values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1 : 1;
    for (let i = 0; i < canvas.width * canvas.height; i++) {
      const grey = digit ? 0.45 * digit[i] : 0, a = values ? Math.pow(Math.abs(values[i]) / max, 0.7) : 0;
      const hue = values && values[i] < 0 ? [60, 120, 255] : [240, 60, 50];
      image.data.set([0, 1, 2].map((k) => grey * (1 - a) + hue[k] * a).concat(255), i * 4);
    }
    g.putImageData(image, 0, 0);
  }

  function sizeCells(canvas, count, h, w, cols) {
    canvas.width = Math.min(cols, count) * (w + 1) - 1;
    canvas.height = Math.ceil(count / cols) * (h + 1) - 1;
  }

  // How a layer's output is laid out: maps in a grid, a vector as a strip of cells.
  function grid(shape) {
    if (shape.length === 3) return { count: shape[2], h: shape[0], w: shape[1], cols: Math.min(MAP_COLS, shape[2]) };
    const n = shape[0];
    return { count: n, h: 1, w: 1, cols: Math.min(n > 64 ? 48 : 16, n) };
  }

  function drawOutput(card, out) {
    if (card.bars) { setBars(card.bars, out.data); return; }
    const g = grid(out.shape);
    drawCells(card.canvas, out.data, g.count, g.h, g.w, g.cols);
  }

  function clearOutput(card) {
    if (card.bars) setBars(card.bars, new Float32Array(card.bars.children.length));
    else card.canvas.getContext("2d").clearRect(0, 0, card.canvas.width, card.canvas.height);
  }

  // The first convolution's kernels, for the first input channel: (filters, kh, kw).
  function drawFilters(canvas, conv) {
    const [f, c, kh, kw] = [conv.outShape[2], conv.inShape[2], conv.kernel[0], conv.kernel[1]];
    const first = new Float32Array(f * kh * kw);
    for (let o = 0; o < f; o++) first.set(conv.weight.subarray(o * c * kh * kw, (o * c + 1) * kh * kw), o * kh * kw);
    drawCells(canvas, first, f, kh, kw, Math.min(MAP_COLS, f));
  }

  // ---- the layer cards ---------------------------------------------------------------------
  const times = (pair) => `${pair[0]}×${pair[1]}`;
  const EXPLAINED = ["Conv2D", "MaxPooling2D", "AveragePooling2D"]; // a click shows the arithmetic

  function explain(L, last) {
    const t = MnistI18n.t, [h, w, c] = L.outShape, usual = L.type === "Conv2D" ? [1, 1] : L.kernel;
    const act = t(`act.${L.activation || "none"}`);
    // A stride is named only when it is not the usual one; 'same' padding always.
    const extras = (L.strides && L.strides.some((s, i) => s !== usual[i]) ? t("note.stride", { s: times(L.strides) }) : "") +
      (L.spec.padding === "same" ? t("note.same") : "");
    switch (L.type) {
      case "Conv2D": return t("layer.conv", { c, size: times([h, w]), k: times(L.kernel), extras, act });
      case "MaxPooling2D": case "AveragePooling2D":
        return t(L.type === "MaxPooling2D" ? "layer.maxpool" : "layer.avgpool", { k: times(L.kernel), extras, c, size: times([h, w]) });
      case "Flatten": return t("layer.flatten", { n: h });
      case "Dense": return last ? t("layer.output", { n: h }) : t("layer.dense", { n: h, act });
      case "Dropout": return t("layer.dropout", { p: Math.round((L.spec.rate || 0) * 100) });
      default: return t("layer.bn");
    }
  }

  function buildLayers(box, model) {
    const cards = {};
    box.replaceChildren();
    model.layers.forEach((L, i) => {
      const last = i === model.layers.length - 1, shape = `(None, ${L.outShape.join(", ")})`;
      const fig = document.createElement("figure");
      fig.className = `card layer kind-${L.type.toLowerCase()}`;
      fig.dataset.name = L.name;
      fig.innerHTML = `<figcaption><span class="step">${i + 1}</span><b translate="no">${L.name}</b>` +
        `<span class="what" translate="no"><span class="kind">${L.type}</span><code>${shape}</code></span></figcaption>`;
      const view = document.createElement(last ? "ol" : "canvas");
      view.className = last ? "bars compact" : "pixelated maps";
      const clickable = !last && EXPLAINED.includes(L.type) && L.outShape.length === 3;
      if (last) makeBars(view, L.outShape[0], true);
      else {
        const g = grid(L.outShape); // sized now, so nothing moves when the first digit comes
        sizeCells(view, g.count, g.h, g.w, g.cols);
        if (clickable) Object.assign(view, { tabIndex: 0 });
        view.classList.toggle("clickable", clickable);
      }
      const note = document.createElement("p");
      note.className = "muted small";
      fig.append(note, view);
      box.append(fig);
      cards[L.name] = { layer: L, index: i, last, note, shape, clickable, figure: fig, ...(last ? { bars: view } : { canvas: view }) };
    });
    relabel(cards);
    return cards;
  }

  // The cards' words, in the page's language (again after a switch).
  function relabel(cards) {
    for (const card of Object.values(cards)) {
      card.note.textContent = explain(card.layer, card.last);
      const view = card.bars || card.canvas, t = MnistI18n.t;
      if (card.bars) view.setAttribute("aria-label", t("aria.bars"));
      else view.setAttribute("aria-label", t(card.clickable ? "aria.maps_click" : "aria.maps", { name: card.layer.name, shape: card.shape }));
    }
  }

  // The summary table keeps Keras' fixed columns: the font shrinks until its widest line fits.
  function fitText(pre) {
    const widest = Math.max(...pre.textContent.split("\n").map((l) => l.length));
    pre.style.fontSize = "";
    const style = getComputedStyle(pre), g = document.createElement("canvas").getContext("2d");
    g.font = `${style.fontSize} ${style.fontFamily}`;
    const charWidth = g.measureText("0".repeat(100)).width / 100, room = pre.clientWidth;
    if (widest * charWidth > room) pre.style.fontSize = `${(parseFloat(style.fontSize) * room) / (widest * charWidth) - 0.05}px`;
  }

  return {
    percent, makeBars, setBars, drawOutput, clearOutput, drawFilters, buildLayers, relabel, fitText,
    grid, scaleOf, colour, cellAt, drawSaliency, times,
  };
})();
