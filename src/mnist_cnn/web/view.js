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
    let max = 1e-6, signed = false;
    for (let i = 0; i < count * h * w; i++) { max = Math.max(max, Math.abs(data[i])); signed = signed || data[i] < 0; }
    const lut = signed ? DIVERGING : BRIGHT, px = image.data;
    for (let c = 0; c < count; c++) {
      const x0 = (c % cols) * (w + 1), y0 = Math.floor(c / cols) * (h + 1);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const i = 3 * Math.round((Math.max(-1, Math.min(1, data[(c * h + y) * w + x] / max)) + 1) * STEPS);
          const at = ((y0 + y) * canvas.width + x0 + x) * 4;
          px[at] = lut[i]; px[at + 1] = lut[i + 1]; px[at + 2] = lut[i + 2]; px[at + 3] = 255;
        }
      }
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
  const ACTIVATION = { relu: "ReLU", sigmoid: "sigmoid", tanh: "tanh", softmax: "softmax" };
  const times = (pair) => `${pair[0]}×${pair[1]}`;
  const steps = (L) => { // a stride is named only when it is not the usual one
    const usual = L.type === "Conv2D" ? [1, 1] : L.kernel;
    return L.strides.every((s, i) => s === usual[i]) ? "" : `, stride ${times(L.strides)}`;
  };
  const padding = (L) => (L.spec.padding === "same" ? ", 'same' padding" : "");

  function explain(L, last) {
    const [h, w, c] = L.outShape, act = ACTIVATION[L.activation] || "no activation";
    switch (L.type) {
      case "Conv2D":
        return `${c} feature maps of ${h}×${w}: one per learned ${times(L.kernel)} filter${steps(L)}${padding(L)}, ${act}`;
      case "MaxPooling2D": case "AveragePooling2D":
        return `${times(L.kernel)} ${L.type === "MaxPooling2D" ? "max" : "average"} pooling${steps(L)}${padding(L)}: ` +
          `the ${c} maps shrink to ${h}×${w}`;
      case "Flatten": return `the maps laid out in one row of ${h} numbers`;
      case "Dense": return last ? `${h} outputs, softmax: one probability per class` : `${h} units, ${act}`;
      case "Dropout": return `drops ${Math.round((L.spec.rate || 0) * 100)}% of values in training only; here it passes them on`;
      default: return "each channel rescaled with the mean and variance learned in training";
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
      fig.innerHTML = `<figcaption><span class="step">${i + 1}</span><b>${L.name}</b>` +
        `<span class="what"><span class="kind">${L.type}</span><code>${shape}</code></span></figcaption>`;
      const view = document.createElement(last ? "ol" : "canvas");
      view.className = last ? "bars compact" : "pixelated maps";
      if (last) makeBars(view, L.outShape[0], true);
      else {
        const g = grid(L.outShape); // sized now, so nothing moves when the first digit comes
        sizeCells(view, g.count, g.h, g.w, g.cols);
        view.setAttribute("aria-label", `${L.name} output ${shape}`);
      }
      const note = document.createElement("p");
      note.className = "muted small";
      note.textContent = explain(L, last);
      fig.append(note, view);
      box.append(fig);
      cards[L.name] = last ? { bars: view } : { canvas: view };
    });
    return cards;
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

  return { percent, makeBars, setBars, drawOutput, clearOutput, drawFilters, buildLayers, fitText };
})();
