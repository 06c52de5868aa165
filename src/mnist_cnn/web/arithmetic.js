// The arithmetic behind one number of a feature map, from engine.js's layer plans (their
// weights, kernel, strides and padding) and the forward pass's maps: for a convolution, the
// window on the input, each input channel's kh x kw values, weights and products, their sums,
// the bias and the activation; for pooling, the window and its largest value (or its mean).
// Explains; does not predict: the page checks its result against the map it explains.
// A classic script; defines the global `MnistArithmetic`.
"use strict";

var MnistArithmetic = (function () {
  const ACTIVATE = {
    relu: (v) => (v > 0 ? v : 0), sigmoid: (v) => 1 / (1 + Math.exp(-v)), tanh: Math.tanh,
  };

  // The window of output pixel (oy, ox) on the layer's input: its top-left corner (negative
  // or past the edge where it covers padding) and size.
  function windowAt(L, oy, ox) {
    return { top: oy * L.strides[0] - L.y.before, left: ox * L.strides[1] - L.x.before,
      rows: L.kernel[0], cols: L.kernel[1] };
  }

  // The window's cells, row by row: {y, x, pad, value} (value 0 for a padding cell).
  function cells(L, x, ch, win) {
    const [h, w] = L.inShape, out = [];
    for (let ky = 0; ky < win.rows; ky++) {
      for (let kx = 0; kx < win.cols; kx++) {
        const y = win.top + ky, xx = win.left + kx, pad = y < 0 || y >= h || xx < 0 || xx >= w;
        out.push({ y, x: xx, pad, value: pad ? 0 : x[(ch * h + y) * w + xx] });
      }
    }
    return out;
  }

  // Filter `o` at output pixel (oy, ox) of a Conv2D whose input maps are `x` (C, H, W).
  // `values`: that layer's output maps, for the number the arithmetic must reach.
  function conv(L, x, values, o, oy, ox) {
    const c = L.inShape[2], [kh, kw] = L.kernel, win = windowAt(L, oy, ox), slices = [];
    for (let ch = 0; ch < c; ch++) {
      const base = (o * c + ch) * kh * kw;
      const window = cells(L, x, ch, win).map((cell, k) => {
        const weight = L.weight[base + k];
        return { ...cell, weight, product: cell.value * weight };
      });
      slices.push({ channel: ch, cells: window, sum: window.reduce((s, v) => s + v.product, 0) });
    }
    const bias = L.bias ? L.bias[o] : 0, total = slices.reduce((s, v) => s + v.sum, 0) + bias;
    const [oh, ow] = L.outShape, value = values[(o * oh + oy) * ow + ox];
    return { kind: "conv", window: win, slices, bias, hasBias: Boolean(L.bias), total,
      activation: L.activation, activated: activate(L, x, total, oy, ox, o), value };
  }

  // The activation of one pre-activation number; a softmax needs every filter's at this pixel.
  function activate(L, x, total, oy, ox, o) {
    const fn = L.activation;
    if (fn === null || fn === "linear") return total;
    if (fn !== "softmax") return ACTIVATE[fn](total);
    const f = L.outShape[2], c = L.inShape[2], [kh, kw] = L.kernel, win = windowAt(L, oy, ox);
    const inputs = [];
    for (let ch = 0; ch < c; ch++) inputs.push(cells(L, x, ch, win));
    const z = [];
    for (let k = 0; k < f; k++) {
      let acc = L.bias ? L.bias[k] : 0;
      inputs.forEach((cellsOf, ch) => cellsOf.forEach((cell, i) => { acc += cell.value * L.weight[(k * c + ch) * kh * kw + i]; }));
      z.push(k === o ? total : acc);
    }
    const max = Math.max(...z), sum = z.reduce((s, v) => s + Math.exp(v - max), 0);
    return Math.exp(total - max) / sum;
  }

  // Channel `ch` at output pixel (oy, ox) of a pooling layer.
  function pool(L, x, values, ch, oy, ox) {
    const win = windowAt(L, oy, ox), window = cells(L, x, ch, win), real = window.filter((c) => !c.pad);
    const isMax = L.type === "MaxPooling2D";
    let chosen = -1;
    if (isMax) window.forEach((c, k) => { if (!c.pad && (chosen < 0 || c.value > window[chosen].value)) chosen = k; });
    const sum = real.reduce((s, c) => s + c.value, 0);
    const [oh, ow] = L.outShape;
    return { kind: isMax ? "max" : "mean", window: win, cells: window, chosen, sum, count: real.length,
      result: isMax ? window[chosen].value : sum / real.length, value: values[(ch * oh + oy) * ow + ox] };
  }

  // Every channel's slice sum, strongest (largest |sum|) first: which slices to show in full.
  function strongest(slices) {
    return [...slices].sort((a, b) => Math.abs(b.sum) - Math.abs(a.sum) || a.channel - b.channel);
  }

  return { windowAt, conv, pool, strongest };
})();
