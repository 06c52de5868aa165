// The arithmetic panel: click a pixel of a convolution's or a pooling layer's maps and the
// panel under that row of cards shows how the number was made (arithmetic.js), with the
// window on the layer's input, the stride's jump and any padding drawn. Arrow keys move the
// pixel, Escape closes. Every number carries its exact value in data-v; the text rounds it.
// A classic script; defines the global `MnistDetail`.
"use strict";

var MnistDetail = (function () {
  const SHOWN = 3; // channel slices shown in full; the rest are summed in one line
  const t = (...args) => MnistI18n.t(...args);
  const fmt = (v, digits = 3) => { const s = v.toFixed(digits); return /^-0\.0*$/.test(s) ? s.slice(1) : s; };

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v; else if (v != null) node.setAttribute(k, v);
    }
    node.append(...children.filter((c) => c != null));
    return node;
  }
  const num = (v, cls = "", digits = 3) => el("span", { class: `num ${cls}`, "data-v": String(v), translate: "no", text: fmt(v, digits) });

  // ---- pictures: one map, enlarged, its padding hatched, windows outlined ------------------
  function paintMap(data, ch, h, w, look, pads, boxes) {
    const ph = h + pads.top + pads.bottom, pw = w + pads.left + pads.right;
    const s = Math.max(3, Math.floor(168 / Math.max(ph, pw)));
    const canvas = el("canvas", { class: "zoom" }), g = canvas.getContext("2d");
    Object.assign(canvas, { width: pw * s, height: ph * s });
    g.fillStyle = "#2a3150";
    g.fillRect(0, 0, canvas.width, canvas.height);
    g.strokeStyle = "#48517a";
    for (let d = -canvas.height; d < canvas.width; d += 6) { // padding: hatched
      g.beginPath(); g.moveTo(d, canvas.height); g.lineTo(d + canvas.height, 0); g.stroke();
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = data[(ch * h + y) * w + x], [r, gg, b] = look ? MnistView.colour(look, v) : [255 * v, 255 * v, 255 * v];
        g.fillStyle = `rgb(${r},${gg},${b})`;
        g.fillRect((x + pads.left) * s, (y + pads.top) * s, s, s);
      }
    }
    for (const box of boxes) {
      g.setLineDash(box.dashed ? [4, 3] : []);
      g.lineWidth = box.dashed ? 1.5 : 2.5;
      g.strokeStyle = box.colour;
      g.strokeRect((box.left + pads.left) * s + 1, (box.top + pads.top) * s + 1, box.cols * s - 2, box.rows * s - 2);
    }
    return canvas;
  }

  function table(cells, cols, cls, text) {
    const body = el("tbody");
    for (let i = 0; i < cells.length; i += cols) {
      body.append(el("tr", {}, ...cells.slice(i, i + cols).map((c) => {
        const td = el("td", { class: c.cls || "" }, c.pad && c.v == null ? t("detail.pad") : num(c.v));
        if (c.pad) td.classList.add("pad");
        if (c.tint != null) td.style.background = c.tint;
        return td;
      })));
    }
    return el("figure", { class: `cells ${cls}` }, el("table", {}, body), el("figcaption", { text }));
  }

  const tint = (v, max) => { // products: red adds, blue subtracts, by share of the largest
    const a = Math.min(Math.abs(v) / (max || 1), 1) * 0.55;
    return v >= 0 ? `rgba(230,70,60,${a})` : `rgba(70,120,255,${a})`;
  };

  // ---- the panel's parts -------------------------------------------------------------------
  function pictures(ctx, win, ch) {
    const L = ctx.layer, [h, w, c] = L.inShape, [oh, ow] = L.outShape, { y: sel } = ctx;
    const pads = { top: L.y.before, bottom: L.y.after, left: L.x.before, right: L.x.after };
    const next = ctx.x + 1 < ow ? MnistArithmetic.windowAt(L, ctx.y, ctx.x + 1)
      : ctx.y + 1 < oh ? MnistArithmetic.windowAt(L, ctx.y + 1, ctx.x) : null;
    const boxes = [{ ...win, colour: "#fde725" }];
    if (next) boxes.unshift({ ...next, colour: "#6fd3ff", dashed: true });
    const inLook = ctx.index === 0 ? null : MnistView.scaleOf(ctx.input);
    const inPic = paintMap(ctx.input, ch, h, w, inLook, pads, boxes);
    const outPic = paintMap(ctx.output, ctx.cell, oh, ow, MnistView.scaleOf(ctx.output), { top: 0, bottom: 0, left: 0, right: 0 },
      [{ top: sel, left: ctx.x, rows: 1, cols: 1, colour: "#fde725" }]);
    outPic.classList.add("pick");
    outPic.addEventListener("click", (ev) => {
      const r = outPic.getBoundingClientRect();
      ctx.select(ctx.cell, Math.floor((ev.clientY - r.top) / r.height * oh), Math.floor((ev.clientX - r.left) / r.width * ow));
    });
    const stride = L.strides.join("×"), padded = pads.top + pads.bottom + pads.left + pads.right > 0;
    const where = el("figure", { class: "where", "data-top": win.top, "data-left": win.left, "data-rows": win.rows, "data-cols": win.cols, "data-channel": ch },
      inPic, el("figcaption", {},
        el("span", { text: t(c > 1 ? "detail.window" : "detail.window_one", { input: ctx.inputName, channel: ch, rows: `${win.top}–${win.top + win.rows - 1}`, cols: `${win.left}–${win.left + win.cols - 1}` }) }),
        next ? el("span", { class: "muted", text: t("detail.next", { s: stride }) }) : null,
        padded ? el("span", { class: "muted", text: t(L.type === "Conv2D" ? "detail.pad_conv" : L.type === "MaxPooling2D" ? "detail.pad_max" : "detail.pad_mean") }) : null));
    const here = el("figure", { class: "here" }, outPic, el("figcaption", { text: t("detail.pixel", { layer: L.name, map: ctx.cell, row: sel, col: ctx.x }) }));
    return el("div", { class: "pictures" }, where, el("span", { class: "arrow", "aria-hidden": "true", text: "→" }), here);
  }

  const term = (op, node) => el("span", { class: "term" }, el("span", { class: "op", text: op }), node);

  function slice(s, L, many, inputName) {
    const cols = L.kernel[1], max = Math.max(...s.cells.map((c) => Math.abs(c.product)));
    return el("div", { class: "slice", "data-channel": s.channel },
      el("p", { class: "slice-head", text: many ? t("detail.channel", { channel: s.channel, input: inputName }) : t("detail.one_channel") }),
      el("div", { class: "eq" }, // each operator stays with the term after it when lines wrap
        table(s.cells.map((c) => ({ v: c.value, pad: c.pad })), cols, "inputs", t("detail.inputs")),
        term("×", table(s.cells.map((c) => ({ v: c.weight })), cols, "weights", t("detail.weights"))),
        term("=", table(s.cells.map((c) => ({ v: c.product, tint: tint(c.product, max) })), cols, "products", t("detail.products"))),
        term("Σ", num(s.sum, "slice-sum", 4))));
  }

  function convBody(ctx, a) {
    const L = ctx.layer, c = L.inShape[2], many = c > 1;
    const order = MnistArithmetic.strongest(a.slices);
    const shown = c <= SHOWN + 1 ? a.slices : order.slice(0, SHOWN), rest = c <= SHOWN + 1 ? [] : order.slice(SHOWN);
    const parts = [el("p", { class: "lead", text: t(many ? "detail.conv_lead_many" : "detail.conv_lead", { k: MnistView.times(L.kernel), c, shown: shown.length, input: ctx.inputName }) }),
      pictures(ctx, a.window, shown[0].channel), ...shown.map((s) => slice(s, L, many, ctx.inputName))];
    if (rest.length) {
      const sum = rest.reduce((acc, s) => acc + s.sum, 0);
      parts.push(el("p", { class: "rest", "data-v": String(sum), "data-count": rest.length },
        t("detail.rest", { n: rest.length }), " ", num(sum, "", 4)));
    }
    const total = a.slices.reduce((acc, s) => acc + s.sum, 0);
    parts.push(el("p", { class: "total" }, "Σ ", num(total, "sum", 4),
      a.hasBias ? el("span", {}, ` + ${t("detail.bias")} `, num(a.bias, "bias", 4)) : el("span", { class: "muted", text: ` (${t("detail.no_bias")})` }),
      " = ", num(a.total, "pre", 4)));
    parts.push(result(a.activation ? `${t(`act.${a.activation}`)}(${fmt(a.total, 4)}) = ` : "", a.activated, a.value));
    return parts;
  }

  function poolBody(ctx, a) {
    const L = ctx.layer, [ih, iw] = L.inShape, [oh, ow] = L.outShape, max = a.kind === "max";
    const cells = a.cells.map((c, k) => ({ v: c.pad ? null : c.value, pad: c.pad, cls: k === a.chosen ? "chosen" : "" }));
    const lead = t(max ? "detail.max_lead" : "detail.mean_lead", { k: MnistView.times(L.kernel), s: L.strides.join("×"), from: `${ih}×${iw}`, to: `${oh}×${ow}` });
    const how = max ? el("p", { class: "total" }, t("detail.max_result"), " ", num(a.result, "result", 4))
      : el("p", { class: "total" }, "(", num(a.sum, "sum", 4), `) ÷ ${a.count} = `, num(a.result, "result", 4),
        el("span", { class: "muted", text: ` ${t("detail.real_cells", { n: a.count })}` }));
    return [el("p", { class: "lead", text: lead }), pictures(ctx, a.window, ctx.cell),
      el("div", { class: "eq" }, table(cells, L.kernel[1], "window", t(max ? "detail.window_max" : "detail.window_mean"))), how,
      result("", a.result, a.value)];
  }

  // The arithmetic's end and the map's own number: they agree (to float32 rounding).
  function result(prefix, got, value) {
    const same = Math.abs(got - value) <= 1e-4 * Math.max(1, Math.abs(value));
    return el("p", { class: `result-line ${same ? "same" : "error"}` }, prefix, num(got, "activated", 4),
      ` ${same ? "=" : "≠"} ${t("detail.map_value")} `, num(value, "value", 4), same ? " ✓" : "");
  }

  // ---- the panel ---------------------------------------------------------------------------
  // ctx: {layer, index, cell, y, x, input, inputName, output, select(cell, y, x), close()}
  function render(panel, ctx) {
    const L = ctx.layer, conv = L.type === "Conv2D";
    const a = conv ? MnistArithmetic.conv(L, ctx.input, ctx.output, ctx.cell, ctx.y, ctx.x)
      : MnistArithmetic.pool(L, ctx.input, ctx.output, ctx.cell, ctx.y, ctx.x);
    const close = el("button", { type: "button", class: "close", "aria-label": t("detail.close"), text: "×" });
    close.addEventListener("click", ctx.close);
    Object.assign(panel.dataset, { layer: L.name, channel: ctx.cell, row: ctx.y, col: ctx.x, kind: a.kind });
    panel.replaceChildren(
      el("header", {}, el("h3", { text: t("detail.title", { layer: L.name, map: ctx.cell, row: ctx.y, col: ctx.x }) }), close),
      ...(conv ? convBody(ctx, a) : poolBody(ctx, a)),
      el("p", { class: "hint muted", text: t("detail.keys") }));
    return a;
  }

  // The panel's life: which pixel is selected, where the panel sits (under the clicked card's
  // row of cards), the mark on the card, clicks and keys. `model`: engine.js's plan.
  function controller(cards, model) {
    const panel = el("section", { id: "detail", class: "card detail", tabindex: "-1", "aria-live": "polite" });
    const marker = el("div", { class: "marker", "aria-hidden": "true" });
    let sel = null, result = null;
    panel.hidden = true;

    function select(name, cell, y, x) {
      const [oh, ow, c] = cards[name].layer.outShape, clamp = (v, n) => Math.min(Math.max(v, 0), n - 1);
      sel = { name, cell: clamp(cell, c), y: clamp(y, oh), x: clamp(x, ow) };
      show();
    }

    function show() {
      if (!sel || !result) { panel.hidden = true; marker.remove(); return; }
      const card = cards[sel.name], i = card.index;
      render(panel, {
        layer: card.layer, index: i, ...sel, input: i ? result.outputs[i - 1].data : result.input,
        inputName: i ? model.layers[i - 1].name : t("detail.the_input"), output: result.outputs[i].data,
        select: (cell, y, x) => select(sel.name, cell, y, x), close,
      });
      panel.hidden = false;
      place(card);
    }

    function close() { sel = null; show(); }

    function place(card) { // after the last card of the clicked card's row
      panel.remove();
      const top = card.figure.offsetTop;
      let last = card.figure;
      for (const c of Object.values(cards)) if (c.figure.offsetTop === top && c.index > cards[last.dataset.name].index) last = c.figure;
      last.after(panel);
      const g = MnistView.grid(card.layer.outShape), cv = card.canvas, k = cv.clientWidth / cv.width;
      Object.assign(marker.style, {
        left: `${cv.offsetLeft + ((sel.cell % g.cols) * (g.w + 1) + sel.x) * k}px`,
        top: `${cv.offsetTop + (Math.floor(sel.cell / g.cols) * (g.h + 1) + sel.y) * k}px`,
        width: `${k}px`, height: `${k}px`,
      });
      card.figure.append(marker);
    }

    function keys(ev) {
      const step = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[ev.key];
      if (ev.key === "Escape" && sel) { ev.preventDefault(); close(); }
      if (!step || !sel) return;
      ev.preventDefault();
      select(sel.name, sel.cell, sel.y + step[0], sel.x + step[1]);
    }

    for (const [name, card] of Object.entries(cards)) {
      if (!card.clickable) continue;
      card.canvas.addEventListener("click", (ev) => {
        const hit = MnistView.cellAt(card.canvas, card.layer.outShape, ev.clientX, ev.clientY);
        if (hit) select(name, hit.cell, hit.y, hit.x);
      });
      card.canvas.addEventListener("keydown", (ev) => {
        if (ev.key !== "Enter" && ev.key !== " ") { if (sel && sel.name === name) keys(ev); return; }
        ev.preventDefault();
        const [oh, ow] = card.layer.outShape;
        select(name, 0, oh >> 1, ow >> 1);
      });
    }
    panel.addEventListener("keydown", keys);
    addEventListener("resize", () => { if (sel && result) place(cards[sel.name]); });
    return {
      select, close, get selection() { return sel; },
      update(next) { result = next; show(); }, // a new forward pass, or null when idle
      relabel: show,
    };
  }

  return { render, controller };
})();
