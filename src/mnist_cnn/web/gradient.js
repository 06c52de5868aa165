// Why the network answered: the gradient of one class's logit with respect to the input
// pixels, by a backward pass through engine.js's layers (the same weights, the forward
// outputs it kept), and the two saliency maps built on it, as mnist_cnn.saliency computes
// them in torch:
//   gradient x input       the gradient at the digit, times the digit (one backward pass)
//   integrated gradients   the gradient averaged along the straight path from the black
//                          image to the digit (trapezoid rule over `steps` intervals),
//                          times the digit; the attributions add up to
//                          logit(digit) - logit(black)
// A classic script; defines the global `MnistGradient`.
"use strict";

var MnistGradient = (function () {
  // g: d logit / d(layer output), in place -> d logit / d(layer output before activation).
  // The derivatives come from the outputs y the forward pass kept.
  function throughActivation(g, y, L) {
    const fn = L.activation;
    if (fn === null || fn === "linear") return g;
    if (fn === "softmax") return throughSoftmax(g, y, L.outShape.length === 3 ? L.outShape[0] * L.outShape[1] : 1);
    for (let i = 0; i < g.length; i++) {
      const v = y[i];
      g[i] *= fn === "relu" ? (v > 0 ? 1 : 0) : fn === "sigmoid" ? v * (1 - v) : 1 - v * v;
    }
    return g;
  }

  function throughSoftmax(g, y, groups) { // over the channels, as engine.js: k * groups + at
    const n = g.length / groups;
    for (let at = 0; at < groups; at++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += g[k * groups + at] * y[k * groups + at];
      for (let k = 0; k < n; k++) g[k * groups + at] = y[k * groups + at] * (g[k * groups + at] - dot);
    }
    return g;
  }

  // Each input cell collects weight x gradient from every output whose window holds it;
  // padding cells collect too and are then dropped.
  function conv2d(g, x, L) {
    const [h, w, c] = L.inShape, [oh, ow, f] = L.outShape, [kh, kw] = L.kernel, [sy, sx] = L.strides;
    const ph = h + L.y.before + L.y.after, pw = w + L.x.before + L.x.after, n = c * kh * kw;
    const gp = new Float64Array(c * ph * pw), wt = L.weight, step = oh * ow;
    for (let o = 0; o < f; o++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          const go = g[o * step + oy * ow + ox];
          if (go === 0) continue; // most are, after a ReLU
          for (let ch = 0; ch < c; ch++) {
            for (let ky = 0; ky < kh; ky++) {
              const row = (ch * ph + oy * sy + ky) * pw + ox * sx, k = o * n + (ch * kh + ky) * kw;
              for (let kx = 0; kx < kw; kx++) gp[row + kx] += wt[k + kx] * go;
            }
          }
        }
      }
    }
    const out = new Float32Array(c * h * w);
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let xx = 0; xx < w; xx++) out[(ch * h + y) * w + xx] = gp[(ch * ph + y + L.y.before) * pw + xx + L.x.before];
      }
    }
    return out;
  }

  // Max: the gradient goes to the window's first largest real cell (torch's choice on ties);
  // average: shared equally among the window's real cells.
  function pool2d(g, x, L) {
    const [h, w, c] = L.inShape, [oh, ow] = L.outShape, [kh, kw] = L.kernel, [sy, sx] = L.strides;
    const isMax = L.type === "MaxPooling2D", out = new Float32Array(c * h * w);
    for (let ch = 0; ch < c; ch++) {
      for (let oy = 0; oy < oh; oy++) {
        const y0 = Math.max(oy * sy - L.y.before, 0), y1 = Math.min(oy * sy - L.y.before + kh, h);
        for (let ox = 0; ox < ow; ox++) {
          const go = g[(ch * oh + oy) * ow + ox];
          if (go === 0) continue;
          const x0 = Math.max(ox * sx - L.x.before, 0), x1 = Math.min(ox * sx - L.x.before + kw, w);
          if (!isMax) {
            const share = go / ((y1 - y0) * (x1 - x0));
            for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) out[(ch * h + y) * w + xx] += share;
            continue;
          }
          let best = -1, max = -Infinity;
          for (let y = y0; y < y1; y++) {
            for (let xx = x0; xx < x1; xx++) {
              const at = (ch * h + y) * w + xx;
              if (x[at] > max || best < 0) { max = x[at]; best = at; }
            }
          }
          out[best] += go;
        }
      }
    }
    return out;
  }

  function flatten(g, x, L) { // Keras' (H, W, C) order -> the (C, H, W) maps
    if (L.inShape.length !== 3) return g;
    const [h, w, c] = L.inShape, out = new Float32Array(g.length);
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < h * w; i++) out[ch * h * w + i] = g[i * c + ch];
    }
    return out;
  }

  function dense(g, x, L) {
    const n = L.inShape[0], units = L.outShape[0], out = new Float64Array(n);
    for (let u = 0; u < units; u++) {
      const gu = g[u], row = u * n;
      if (gu === 0) continue;
      for (let i = 0; i < n; i++) out[i] += L.weight[row + i] * gu;
    }
    return Float32Array.from(out);
  }

  function batchNorm(g, x, L) { // y = x * scale + shift per channel: dy/dx = scale
    const n = L.gamma.length, per = g.length / n, out = new Float32Array(g.length);
    for (let ch = 0; ch < n; ch++) {
      const scale = L.gamma[ch] / Math.sqrt(L.variance[ch] + L.epsilon);
      for (let i = ch * per; i < (ch + 1) * per; i++) out[i] = g[i] * scale;
    }
    return out;
  }

  const BACK = {
    Conv2D: conv2d, MaxPooling2D: pool2d, AveragePooling2D: pool2d, Flatten: flatten,
    Dense: dense, Dropout: (g) => g, BatchNormalization: batchNorm,
  };

  // d logits[target] / d input, from a forward pass's result; (H, W, C) order like the input.
  function inputGradient(model, result, target) {
    const layers = model.layers, last = layers.length - 1;
    let g = new Float32Array(layers[last].outShape[0]);
    g[target] = 1; // the logit itself: the last layer's output before its softmax
    for (let i = last; i >= 0; i--) {
      if (i < last) g = throughActivation(g, result.outputs[i].data, layers[i]);
      g = BACK[layers[i].type](g, i ? result.outputs[i - 1].data : result.input, layers[i]);
    }
    const [h, w, c] = model.inputShape, out = new Float32Array(g.length);
    for (let ch = 0; ch < c; ch++) {
      for (let k = 0; k < h * w; k++) out[k * c + ch] = g[ch * h * w + k];
    }
    return out;
  }

  const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

  // Gradient x input for the predicted class (or `target`).
  function gradientXInput(model, input, target) {
    const result = MnistEngine.forward(model, input);
    const t = target == null ? argmax(result.logits) : target;
    const grad = inputGradient(model, result, t);
    return { values: grad.map((v, i) => v * input[i]), target: t, logit: result.logits[t] };
  }

  // Integrated gradients from the black image, one path point per call of step(k), so that a
  // page can spread the work over several frames (see integratedGradientsAsync).
  function integratedGradientsSteps(model, input, steps, target) {
    const t = target == null ? argmax(MnistEngine.forward(model, input).logits) : target;
    const sum = new Float64Array(input.length), logits = [];
    const state = { target: t, steps, done: 0 };
    state.step = () => {
      const k = state.done++, alpha = k / steps, weight = (k === 0 || k === steps ? 0.5 : 1) / steps;
      const point = input.map((v) => alpha * v);
      const result = MnistEngine.forward(model, point);
      const grad = inputGradient(model, result, t);
      for (let i = 0; i < sum.length; i++) sum[i] += weight * grad[i];
      logits[k] = result.logits[t];
      return state.done > steps;
    };
    state.result = () => ({
      values: Float32Array.from(sum, (v, i) => v * input[i]), target: t,
      logit: logits[steps], baselineLogit: logits[0],
    });
    return state;
  }

  function integratedGradients(model, input, steps, target) {
    const run = integratedGradientsSteps(model, input, steps, target);
    while (!run.step());
    return run.result();
  }

  // The same, in slices of about `sliceMs` between frames (the first after the caller's own
  // work), so drawing stays smooth; resolves to null when `cancelled()` turns true between
  // slices (a new drawing replaced this one).
  function integratedGradientsAsync(model, input, steps, target, cancelled, sliceMs = 12) {
    const run = integratedGradientsSteps(model, input, steps, target);
    return new Promise((resolve) => {
      const slice = () => {
        if (cancelled()) { resolve(null); return; }
        const t0 = performance.now();
        let finished = false;
        while (!finished && performance.now() - t0 < sliceMs) finished = run.step();
        if (finished) resolve(run.result()); else setTimeout(slice, 0);
      };
      setTimeout(slice, 0);
    });
  }

  return { inputGradient, gradientXInput, integratedGradients, integratedGradientsAsync };
})();
