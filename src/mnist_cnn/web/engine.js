// The network's forward pass in the browser: the architecture description of model.json and
// the float32 weights of model.safetensors -> every layer's output for one image, with
// Keras' semantics (the same numbers torch computes, to float32 rounding).
// A classic script (no modules, no libraries) so the page also works opened from file://.
// Defines the global `MnistEngine`.
"use strict";

var MnistEngine = (function () {
  // Keras' automatic layer names: a counter per type (conv2d, conv2d_1, ...).
  const KERAS_NAMES = {
    Conv2D: "conv2d", MaxPooling2D: "max_pooling2d", AveragePooling2D: "average_pooling2d",
    Flatten: "flatten", Dense: "dense", Dropout: "dropout", BatchNormalization: "batch_normalization",
  };

  function fail(message) { throw new Error(message); }

  // ---- weights: base64 text -> bytes -> {name: {shape, data}} ------------------------------
  function decodeBase64(text) {
    const raw = atob(text), bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  // safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's
  // dtype, shape and byte range, then the raw little-endian data.
  function readSafetensors(bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 8) fail("the weights are truncated");
    const headerLength = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
    if (headerLength > bytes.length - 8) fail("the weights header is truncated");
    let header;
    try {
      header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    } catch (err) { fail(`the weights header is not JSON (${err.message})`); }
    const start = 8 + headerLength, tensors = {};
    for (const [name, info] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const [begin, end] = info.data_offsets, count = info.shape.reduce((a, b) => a * b, 1);
      if (info.dtype !== "F32") fail(`${name} is ${info.dtype}, not F32`);
      if (end - begin !== count * 4 || start + end > bytes.length) fail(`${name}: bad byte range`);
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = view.getFloat32(start + begin + 4 * i, true);
      tensors[name] = { shape: info.shape, data };
    }
    return tensors;
  }

  // ---- architecture: specs with every field filled in, shapes and weights checked ----------
  const pair = (v, fallback) => (v == null ? [fallback, fallback] : Array.isArray(v) ? v : [v, v]);

  // Keras: 'valid' -> floor((n - k) / s) + 1; 'same' -> ceil(n / s), with the padding split
  // pad_total // 2 before and the rest after.
  function window1d(n, k, s, padding) {
    if (padding === "same") {
      const out = Math.ceil(n / s), total = Math.max((out - 1) * s + k - n, 0);
      return { out, before: Math.floor(total / 2), after: total - Math.floor(total / 2) };
    }
    return { out: Math.floor((n - k) / s) + 1, before: 0, after: 0 };
  }

  function spatial(spec, inShape, kernel, strides) {
    if (inShape.length !== 3) fail(`${spec.type} needs (H, W, C) input`);
    const padding = spec.padding || "valid";
    if (padding !== "valid" && padding !== "same") fail(`unknown padding ${padding}`);
    const y = window1d(inShape[0], kernel[0], strides[0], padding);
    const x = window1d(inShape[1], kernel[1], strides[1], padding);
    if (y.out < 1 || x.out < 1) fail(`${spec.type} leaves an empty output`);
    return { kernel, strides, y, x };
  }

  // One layer's plan: its Keras name, output shape and weights, checked against the file.
  function plan(spec, name, inShape, tensors) {
    const get = (param, shape) => {
      const t = tensors[`layers.${name}.${param}`];
      if (!t) fail(`missing weights layers.${name}.${param}`);
      if (t.shape.join() !== shape.join()) fail(`layers.${name}.${param} is [${t.shape}], expected [${shape}]`);
      return t.data;
    };
    const L = { type: spec.type, name, spec, inShape, activation: spec.activation || null };
    if (spec.type === "Conv2D") {
      const kernel = pair(spec.kernel_size, 3), strides = pair(spec.strides, 1);
      Object.assign(L, spatial(spec, inShape, kernel, strides));
      L.outShape = [L.y.out, L.x.out, spec.filters];
      L.weight = get("weight", [spec.filters, inShape[2], kernel[0], kernel[1]]);
      L.bias = spec.use_bias === false ? null : get("bias", [spec.filters]);
    } else if (spec.type === "MaxPooling2D" || spec.type === "AveragePooling2D") {
      const pool = pair(spec.pool_size, 2), strides = spec.strides == null ? pool : pair(spec.strides);
      Object.assign(L, spatial(spec, inShape, pool, strides));
      L.outShape = [L.y.out, L.x.out, inShape[2]];
    } else if (spec.type === "Flatten") {
      L.outShape = [inShape.reduce((a, b) => a * b, 1)];
    } else if (spec.type === "Dense") {
      if (inShape.length !== 1) fail("Dense needs a flat input");
      L.outShape = [spec.units];
      L.weight = get("weight", [spec.units, inShape[0]]);
      L.bias = spec.use_bias === false ? null : get("bias", [spec.units]);
    } else if (spec.type === "Dropout") {
      L.outShape = inShape;
    } else if (spec.type === "BatchNormalization") {
      const n = inShape[inShape.length - 1]; // channels-last: the last axis is normalised
      L.outShape = inShape;
      L.gamma = get("gamma", [n]);
      L.beta = get("beta", [n]);
      L.mean = get("moving_mean", [n]);
      L.variance = get("moving_variance", [n]);
      L.epsilon = spec.epsilon == null ? 1e-3 : spec.epsilon;
    } else {
      fail(`unknown layer type ${spec.type}`);
    }
    L.params = ["weight", "bias", "gamma", "beta", "mean", "variance"]
      .reduce((sum, key) => sum + (L[key] ? L[key].length : 0), 0);
    return L;
  }

  function build(arch, tensors) {
    if (!arch || !Array.isArray(arch.layers)) fail("no layers in the architecture");
    const seen = {}, layers = [];
    let shape = arch.input_shape || [28, 28, 1];
    const inputShape = shape;
    for (const spec of arch.layers) {
      const base = KERAS_NAMES[spec.type] || fail(`unknown layer type ${spec.type}`);
      const name = seen[base] ? `${base}_${seen[base]}` : base;
      seen[base] = (seen[base] || 0) + 1;
      const layer = plan(spec, name, shape, tensors);
      layers.push(layer);
      shape = layer.outShape;
    }
    return { name: arch.name, inputShape, layers };
  }

  // ---- the layers: maps are (C, H, W) Float32Arrays, vectors (F) ---------------------------
  function pad(x, c, h, w, L, fill) {
    const top = L.y.before, left = L.x.before;
    if (!top && !left && !L.y.after && !L.x.after) return { data: x, h, w };
    const ph = h + top + L.y.after, pw = w + left + L.x.after, out = new Float32Array(c * ph * pw);
    if (fill) out.fill(fill);
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        out.set(x.subarray((ch * h + y) * w, (ch * h + y + 1) * w), (ch * ph + y + top) * pw + left);
      }
    }
    return { data: out, h: ph, w: pw };
  }

  // Per output position: gather the input patch once (C x kh x kw, the weights' own order),
  // then a long dot product per filter, four filters at a time so that each patch value is
  // loaded once for four of them (about 4x faster than a loop per kernel tap in V8).
  function conv2d(x, L) {
    const [h, w, c] = L.inShape, [oh, ow, f] = L.outShape, [kh, kw] = L.kernel, [sy, sx] = L.strides;
    const p = pad(x, c, h, w, L, 0), xp = p.data, plane = p.h * p.w, n = c * kh * kw, step = oh * ow;
    const wt = L.weight, bias = L.bias || new Float32Array(f), patch = new Float32Array(n);
    const out = new Float32Array(f * step);
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        for (let ch = 0, k = 0; ch < c; ch++) {
          for (let ky = 0; ky < kh; ky++) {
            const row = ch * plane + (oy * sy + ky) * p.w + ox * sx;
            for (let kx = 0; kx < kw; kx++) patch[k++] = xp[row + kx];
          }
        }
        const at = oy * ow + ox;
        let o = 0;
        for (; o + 4 <= f; o += 4) {
          const b0 = o * n, b1 = b0 + n, b2 = b1 + n, b3 = b2 + n;
          let a0 = bias[o], a1 = bias[o + 1], a2 = bias[o + 2], a3 = bias[o + 3];
          for (let i = 0; i < n; i++) {
            const v = patch[i];
            a0 += wt[b0 + i] * v; a1 += wt[b1 + i] * v; a2 += wt[b2 + i] * v; a3 += wt[b3 + i] * v;
          }
          out[o * step + at] = a0; out[(o + 1) * step + at] = a1;
          out[(o + 2) * step + at] = a2; out[(o + 3) * step + at] = a3;
        }
        for (; o < f; o++) { // the filters left over when there are not four
          let acc = bias[o];
          for (let i = 0; i < n; i++) acc += wt[o * n + i] * patch[i];
          out[o * step + at] = acc;
        }
      }
    }
    return out;
  }

  // Max pooling pads with -inf; average pooling divides by the real (unpadded) cells.
  function pool2d(x, L) {
    const [h, w, c] = L.inShape, [oh, ow] = L.outShape, [kh, kw] = L.kernel, [sy, sx] = L.strides;
    const isMax = L.type === "MaxPooling2D", out = new Float32Array(c * oh * ow);
    for (let ch = 0; ch < c; ch++) {
      for (let oy = 0; oy < oh; oy++) {
        const y0 = Math.max(oy * sy - L.y.before, 0), y1 = Math.min(oy * sy - L.y.before + kh, h);
        for (let ox = 0; ox < ow; ox++) {
          const x0 = Math.max(ox * sx - L.x.before, 0), x1 = Math.min(ox * sx - L.x.before + kw, w);
          let acc = isMax ? -Infinity : 0;
          for (let y = y0; y < y1; y++) {
            for (let xx = x0; xx < x1; xx++) {
              const v = x[(ch * h + y) * w + xx];
              acc = isMax ? (v > acc ? v : acc) : acc + v;
            }
          }
          out[(ch * oh + oy) * ow + ox] = isMax ? acc : acc / ((y1 - y0) * (x1 - x0));
        }
      }
    }
    return out;
  }

  function flatten(x, L) { // (C, H, W) -> Keras' (H, W, C) order
    if (L.inShape.length !== 3) return x;
    const [h, w, c] = L.inShape, out = new Float32Array(x.length);
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < h * w; i++) out[i * c + ch] = x[ch * h * w + i];
    }
    return out;
  }

  function dense(x, L) {
    const n = L.inShape[0], units = L.outShape[0], out = new Float32Array(units);
    for (let u = 0; u < units; u++) {
      let acc = L.bias ? L.bias[u] : 0;
      const row = u * n;
      for (let i = 0; i < n; i++) acc += L.weight[row + i] * x[i];
      out[u] = acc;
    }
    return out;
  }

  function batchNorm(x, L) {
    const n = L.gamma.length, per = x.length / n, out = new Float32Array(x.length);
    const maps = L.inShape.length === 3; // maps: channel-major blocks; vectors: one per unit
    for (let ch = 0; ch < n; ch++) {
      const scale = L.gamma[ch] / Math.sqrt(L.variance[ch] + L.epsilon);
      const shift = L.beta[ch] - L.mean[ch] * scale;
      if (!maps) { out[ch] = x[ch] * scale + shift; continue; }
      for (let i = ch * per; i < (ch + 1) * per; i++) out[i] = x[i] * scale + shift;
    }
    return out;
  }

  function softmax(x, groups) { // over the channels: Keras' last axis
    const n = x.length / groups, out = new Float32Array(x.length);
    for (let g = 0; g < groups; g++) {
      let max = -Infinity, sum = 0;
      for (let k = 0; k < n; k++) max = Math.max(max, x[k * groups + g]);
      for (let k = 0; k < n; k++) sum += Math.exp(x[k * groups + g] - max);
      for (let k = 0; k < n; k++) out[k * groups + g] = Math.exp(x[k * groups + g] - max) / sum;
    }
    return out;
  }

  function activate(x, L) {
    const fn = L.activation;
    if (fn === null || fn === "linear") return x;
    if (fn === "softmax") return softmax(x, L.outShape.length === 3 ? L.outShape[0] * L.outShape[1] : 1);
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      x[i] = fn === "relu" ? (v > 0 ? v : 0) : fn === "sigmoid" ? 1 / (1 + Math.exp(-v))
        : fn === "tanh" ? Math.tanh(v) : fail(`unknown activation ${fn}`);
    }
    return x;
  }

  const RUN = {
    Conv2D: conv2d, MaxPooling2D: pool2d, AveragePooling2D: pool2d, Flatten: flatten,
    Dense: dense, Dropout: (x) => x, BatchNormalization: batchNorm,
  };

  // (H, W, C) channels-last values -> the (C, H, W) map the layers work on.
  function toMaps(model, input) {
    const [h, w, c] = model.inputShape, x = new Float32Array(c * h * w);
    for (let ch = 0; ch < c; ch++) {
      for (let i = 0; i < h * w; i++) x[ch * h * w + i] = input[i * c + ch];
    }
    return x;
  }

  // input: the image as (H, W, C) floats in 0..1 (for one channel: 784 values, row by row).
  // Returns the input as maps, every layer's output after its activation, the logits (the
  // last layer before its softmax) and the probabilities: softmax of the logits, as torch
  // computes logits -> softmax (a final softmax layer is computed once).
  function forward(model, input) {
    const maps = toMaps(model, input), outputs = [];
    let x = maps;
    model.layers.forEach((L, i) => {
      const last = i === model.layers.length - 1;
      x = RUN[L.type](x, L);
      if (!(last && L.activation === "softmax")) x = activate(x, L);
      outputs.push({ name: L.name, type: L.type, shape: L.outShape, data: x });
    });
    const probabilities = softmax(x, 1);
    outputs[outputs.length - 1].data = probabilities;
    return { input: maps, outputs, logits: x, probabilities };
  }

  return { decodeBase64, readSafetensors, build, forward, window1d, toMaps };
})();
