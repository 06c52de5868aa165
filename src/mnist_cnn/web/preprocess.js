// A drawing -> an MNIST-style 28x28 digit, in the browser: the steps of the server's
// `mnist_cnn.preprocess.to_mnist` (light ink on black, cropped to the ink, the longer side
// scaled to 20 px with antialiasing, strokes brought near MNIST's width, centre of mass at
// 14.0), with Pillow's resampling rules written out so the two agree pixel for pixel up to
// float rounding. Photos are the server's job (decoding, EXIF, huge images); this file
// handles canvas pixels. An image that already is MNIST-style 28x28 passes through unchanged.
// A classic script; defines the global `MnistPreprocess`.
"use strict";

var MnistPreprocess = (function () {
  const WORK_SIDE = 512, SIDE = 28, DIGIT_BOX = 20, CENTRE = 14.0;
  const MIN_CONTRAST = 0.08, NOISE_SIGMAS = 6.0, MIN_INK_PIXELS = 5;
  const STROKE_WIDTH = 1.85, FIT_SCALE = 4;

  class NoDigit extends Error { // code: the page's message id (nodigit.<code>)
    constructor(code, message) { super(message); this.code = code; }
  }
  const img = (w, h, a) => ({ w, h, a: a || new Float32Array(w * h) });

  // Python's round() and numpy's rint: halves go to the even neighbour.
  function roundEven(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  // ---- statistics as numpy computes them ----------------------------------------------------
  // The k-th smallest value (quickselect: partial ordering, no full sort); `a` is reordered.
  function select(a, k) {
    let lo = 0, hi = a.length - 1;
    while (lo < hi) {
      const pivot = a[(lo + hi) >> 1];
      let i = lo, j = hi;
      while (i <= j) {
        while (a[i] < pivot) i++;
        while (a[j] > pivot) j--;
        if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
      }
      if (k <= j) hi = j; else if (k >= i) lo = i; else break;
    }
    return a[k];
  }

  function percentile(values, q) { // numpy's default 'linear' method
    const a = Float64Array.from(values), idx = (q / 100) * (a.length - 1), lo = Math.floor(idx), t = idx - lo;
    const low = select(a, lo);
    let high = low; // the next value up: the smallest of those after `lo`
    if (lo + 1 < a.length) { high = Infinity; for (let i = lo + 1; i < a.length; i++) high = Math.min(high, a[i]); }
    const d = high - low;
    return t >= 0.5 ? high - d * (1 - t) : low + d * t;
  }
  const median = (values) => percentile(values, 50);

  // ---- Pillow's resampling, for a float ("F") image: horizontal pass, then vertical ---------
  const FILTERS = {
    box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
    bilinear: { support: 1.0, f: (x) => Math.max(0, 1 - Math.abs(x)) },
  };

  function coefficients(inSize, outSize, filter) {
    const scale = inSize / outSize, fscale = Math.max(scale, 1), support = filter.support * fscale;
    const rows = [];
    for (let o = 0; o < outSize; o++) {
      const centre = (o + 0.5) * scale;
      const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
      const hi = Math.min(Math.trunc(centre + support + 0.5), inSize);
      const k = [];
      let total = 0;
      for (let x = lo; x < hi; x++) { k.push(filter.f((x - centre + 0.5) / fscale)); total += k[k.length - 1]; }
      rows.push({ lo, k: total ? k.map((v) => v / total) : k });
    }
    return rows;
  }

  function resize(src, w, h, kind) {
    if (w === src.w && h === src.h) return img(w, h, src.a.slice());
    const filter = FILTERS[kind];
    let cur = src;
    if (w !== src.w) {
      const cx = coefficients(src.w, w, filter), out = img(w, src.h);
      for (let y = 0; y < src.h; y++) {
        for (let x = 0; x < w; x++) {
          let s = 0;
          const { lo, k } = cx[x];
          for (let i = 0; i < k.length; i++) s += src.a[y * src.w + lo + i] * k[i];
          out.a[y * w + x] = s;
        }
      }
      cur = out;
    }
    if (h !== src.h) {
      const cy = coefficients(src.h, h, filter), out = img(cur.w, h);
      for (let y = 0; y < h; y++) {
        const { lo, k } = cy[y];
        for (let x = 0; x < cur.w; x++) {
          let s = 0;
          for (let i = 0; i < k.length; i++) s += cur.a[(lo + i) * cur.w + x] * k[i];
          out.a[y * cur.w + x] = s;
        }
      }
      cur = out;
    }
    return cur;
  }

  // ---- the steps of to_mnist ---------------------------------------------------------------
  // Luminance as Pillow's convert("L") computes it; a transparent canvas is flattened onto a
  // page that contrasts with the ink.
  function toGray(rgba, w, h) {
    const lum = new Float32Array(w * h), alpha = new Float32Array(w * h);
    let opaque = true;
    for (let i = 0; i < w * h; i++) {
      const r = rgba[4 * i], g = rgba[4 * i + 1], b = rgba[4 * i + 2];
      lum[i] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255;
      alpha[i] = rgba[4 * i + 3] / 255;
      opaque = opaque && rgba[4 * i + 3] === 255;
    }
    if (opaque) return img(w, h, lum);
    let ink = 0, mass = 0;
    for (let i = 0; i < w * h; i++) { ink += lum[i] * alpha[i]; mass += alpha[i]; }
    const page = ink / Math.max(mass, 1e-6) < 0.5 ? 1 : 0;
    for (let i = 0; i < w * h; i++) lum[i] = lum[i] * alpha[i] + page * (1 - alpha[i]);
    return img(w, h, lum);
  }

  function frame(im) { // a band along the edges, 5% of the shorter side
    const { w, h, a } = im, m = Math.max(1, Math.floor(Math.min(w, h) / 20));
    const out = new Float32Array(2 * m * (w + h));
    let n = 0;
    for (const y0 of [0, h - m]) for (let i = y0 * w; i < (y0 + m) * w; i++) out[n++] = a[i];
    for (const x0 of [0, w - m]) for (let y = 0; y < h; y++) for (let x = x0; x < x0 + m; x++) out[n++] = a[y * w + x];
    return out;
  }

  function paperStats(im) {
    const edge = frame(im), level = median(edge);
    return [level, Math.max(1.4826 * median(edge.map((v) => Math.abs(v - level))), 1 / 255)];
  }

  // The mean over each pixel's 3x3 neighbourhood, edges repeated (numpy's pad "edge").
  function box3(im) {
    const { w, h, a } = im, out = img(w, h);
    for (let y = 0; y < h; y++) {
      const up = Math.max(y - 1, 0) * w, mid = y * w, down = Math.min(y + 1, h - 1) * w;
      for (let x = 0; x < w; x++) {
        const l = Math.max(x - 1, 0), r = Math.min(x + 1, w - 1);
        out.a[mid + x] = (a[up + l] + a[up + x] + a[up + r] + a[mid + l] + a[mid + x] + a[mid + r] +
          a[down + l] + a[down + x] + a[down + r]) / 9;
      }
    }
    return out;
  }

  function min3(im) { // the minimum over each 3x3 neighbourhood, edges repeated
    const { w, h, a } = im, out = img(w, h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let m = Infinity;
        for (let yy = Math.max(y - 1, 0); yy <= Math.min(y + 1, h - 1); yy++) {
          for (let xx = Math.max(x - 1, 0); xx <= Math.min(x + 1, w - 1); xx++) m = Math.min(m, a[yy * w + xx]);
        }
        out.a[y * w + x] = m;
      }
    }
    return out;
  }

  function background(gray) { // the paper's brightness: low block percentiles, smoothed
    const { w, h } = gray, block = Math.max(4, Math.floor(Math.max(h, w) / 8));
    const gh = Math.ceil(h / block), gw = Math.ceil(w / block), grid = img(gw, gh);
    for (let by = 0; by < gh; by++) {
      for (let bx = 0; bx < gw; bx++) {
        const cells = [];
        for (let y = by * block; y < (by + 1) * block; y++) {
          for (let x = bx * block; x < (bx + 1) * block; x++) {
            cells.push(gray.a[Math.min(y, h - 1) * w + Math.min(x, w - 1)]);
          }
        }
        grid.a[by * gw + bx] = percentile(cells, 10);
      }
    }
    return resize(min3(grid), w, h, "bilinear");
  }

  function inkMap(gray) { // ink 0..1 with the paper at exactly 0
    const paper = median(frame(gray)), mean = box3(gray).a;
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < mean.length; i++) { lo = Math.min(lo, mean[i]); hi = Math.max(hi, mean[i]); }
    if (Math.max(hi - paper, paper - lo) < MIN_CONTRAST) throw new NoDigit("blank", "no digit found: the image is blank");
    if (paper - lo > hi - paper) gray = img(gray.w, gray.h, gray.a.map((v) => 1 - v));
    const bg = background(gray).a, ink = img(gray.w, gray.h);
    for (let i = 0; i < bg.length; i++) ink.a[i] = Math.max(gray.a[i] - bg[i], 0);
    const [level, sigma] = paperStats(ink), smooth = box3(ink), [sLevel, sSigma] = paperStats(smooth);
    const cut = sLevel + Math.max(MIN_CONTRAST, NOISE_SIGMAS * sSigma), strong = [];
    for (let i = 0; i < smooth.a.length; i++) if (smooth.a[i] > cut) strong.push(ink.a[i]);
    if (strong.length < MIN_INK_PIXELS) throw new NoDigit("faint", "no digit found: nothing stands out from the background");
    const top = percentile(strong, 99), floor = level + Math.max(3 * sigma, 0.25 * (top - level));
    for (let i = 0; i < ink.a.length; i++) ink.a[i] = Math.min(Math.max((ink.a[i] - floor) / (top - floor), 0), 1);
    return ink;
  }

  // One axis of the crop: the span holding all but `trim` of the ink mass at each side, grown
  // while the ink goes on (a speck apart from the digit stays out, thin tails stay in).
  function span(profile, trim) {
    const n = profile.length;
    let total = 0, peak = 0, run = 0, lo = n, hi = n;
    for (const v of profile) { total += v; peak = Math.max(peak, v); }
    for (let i = 0; i < n; i++) {
      run += profile[i];
      if (lo === n && run / total >= trim) lo = i;
      if (hi === n && run / total >= 1 - trim) hi = i;
    }
    hi = Math.min(hi, n - 1);
    while (lo > 0 && profile[lo - 1] > 0.02 * peak) lo--;
    while (hi < n - 1 && profile[hi + 1] > 0.02 * peak) hi++;
    return [lo, hi];
  }

  function cropToInk(ink, trim = 0.02) {
    const { w, h, a } = ink, rows = new Float64Array(h), cols = new Float64Array(w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) { rows[y] += a[y * w + x]; cols[x] += a[y * w + x]; }
    }
    const [r0, r1] = span(rows, trim), [c0, c1] = span(cols, trim), out = img(c1 - c0 + 1, r1 - r0 + 1);
    for (let y = r0; y <= r1; y++) out.a.set(ink.a.subarray(y * ink.w + c0, y * ink.w + c1 + 1), (y - r0) * out.w);
    return out;
  }

  function resizeLonger(a, longer) { // antialiased; the shorter side at least 1 px
    const scale = longer / Math.max(a.h, a.w);
    const w = Math.max(1, roundEven(a.w * scale)), h = Math.max(1, roundEven(a.h * scale));
    const out = resize(a, w, h, scale < 1 ? "box" : "bilinear");
    out.a = out.a.map((v) => Math.min(Math.max(v, 0), 1));
    return out;
  }

  function strokeWidth(a) { // area / (edge length / 2) of the mask a > 0.5
    const m = (x, y) => (a.a[y * a.w + x] > 0.5 ? 1 : 0);
    let area = 0, edges = 0;
    for (let y = 0; y < a.h; y++) {
      for (let x = 0; x < a.w; x++) {
        area += m(x, y);
        if (x + 1 < a.w) edges += Math.abs(m(x + 1, y) - m(x, y));
        if (y + 1 < a.h) edges += Math.abs(m(x, y + 1) - m(x, y));
      }
    }
    for (let x = 0; x < a.w; x++) edges += m(x, 0) + m(x, a.h - 1);
    for (let y = 0; y < a.h; y++) edges += m(0, y) + m(a.w - 1, y);
    return (2 * area) / Math.max(edges, 1);
  }

  function morph(a, pick, by) { // Pillow's MaxFilter / MinFilter, edges repeated
    const size = Math.max(3, 2 * roundEven(by / 2) + 1), r = (size - 1) / 2, out = img(a.w, a.h);
    for (let y = 0; y < a.h; y++) {
      for (let x = 0; x < a.w; x++) {
        let v = a.a[y * a.w + x];
        for (let yy = Math.max(y - r, 0); yy <= Math.min(y + r, a.h - 1); yy++) {
          for (let xx = Math.max(x - r, 0); xx <= Math.min(x + r, a.w - 1); xx++) v = pick(v, a.a[yy * a.w + xx]);
        }
        out.a[y * a.w + x] = v;
      }
    }
    return out;
  }

  function fitBox(crop) { // longer side DIGIT_BOX px, strokes near MNIST's width
    let big = resizeLonger(crop, DIGIT_BOX * FIT_SCALE);
    const width = strokeWidth(big), target = STROKE_WIDTH * FIT_SCALE;
    if (width < 0.7 * target) big = morph(big, Math.max, target - width);
    else if (width > 1.8 * target) big = morph(big, Math.min, width - 1.3 * target);
    const small = resizeLonger(big, DIGIT_BOX), max = Math.max(...small.a);
    if (max > 0) small.a = small.a.map((v) => v / max);
    return small;
  }

  function centreOfMass(a) { // (row, col)
    let total = 0, rows = 0, cols = 0;
    for (let y = 0; y < a.h; y++) {
      for (let x = 0; x < a.w; x++) { const v = a.a[y * a.w + x]; total += v; rows += v * y; cols += v * x; }
    }
    return [rows / total, cols / total];
  }

  function centreByMass(digit) { // whole-pixel shift, kept inside the field
    const [r, c] = centreOfMass(digit), out = new Uint8Array(SIDE * SIDE);
    const top = Math.min(Math.max(roundEven(CENTRE - r), 0), SIDE - digit.h);
    const left = Math.min(Math.max(roundEven(CENTRE - c), 0), SIDE - digit.w);
    for (let y = 0; y < digit.h; y++) {
      for (let x = 0; x < digit.w; x++) {
        out[(top + y) * SIDE + left + x] = roundEven(Math.fround(digit.a[y * digit.w + x] * 255));
      }
    }
    return out;
  }

  function isMnistStyle(bytes) { // black background, 20 px ink box, centred by mass
    if (median(bytes) > 8 || !bytes.some((v) => v)) return false;
    let r0 = SIDE, r1 = -1, c0 = SIDE, c1 = -1;
    bytes.forEach((v, i) => {
      if (!v) return;
      const y = Math.floor(i / SIDE), x = i % SIDE;
      r0 = Math.min(r0, y); r1 = Math.max(r1, y); c0 = Math.min(c0, x); c1 = Math.max(c1, x);
    });
    const longer = Math.max(r1 - r0, c1 - c0) + 1, com = centreOfMass(img(SIDE, SIDE, bytes));
    return Math.abs(longer - DIGIT_BOX) <= 1 && com.every((v) => Math.abs(v - CENTRE) <= 0.75);
  }

  // RGBA pixels (an ImageData) -> the (28 * 28) uint8 digit. Throws NoDigit when there is none.
  function toMnist(image) {
    let gray = toGray(image.data, image.width, image.height);
    if (gray.w === SIDE && gray.h === SIDE) {
      const bytes = Uint8Array.from(gray.a, (v) => roundEven(Math.fround(v * 255)));
      if (isMnistStyle(bytes)) return bytes;
    }
    const scale = WORK_SIDE / Math.max(gray.w, gray.h);
    if (scale < 1) gray = resize(gray, Math.max(1, roundEven(gray.w * scale)), Math.max(1, roundEven(gray.h * scale)), "box");
    return centreByMass(fitBox(cropToInk(inkMap(gray))));
  }

  return { toMnist, NoDigit, resize };
})();
