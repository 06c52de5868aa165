// The drawing pad: strokes with the mouse, a finger or a pen, undo, clear, the Example
// button's digits, their keys (Z, Delete, E), and a photo shown under the strokes. It calls
// `changed()` at most once per display frame after anything changed.
// A classic script; defines the global `MnistPad`.
"use strict";

var MnistPad = (function () {
  const INK = 20; // pen width on the 280 px pad: MNIST-like strokes after scaling
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

  // canvas: the pad; buttons: {undo, clear, example}; changed(): called once per frame.
  function create(canvas, buttons, changed) {
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const state = { strokes: [], photo: null }; // each stroke: [[x, y], ...] in pad pixels
    let current = null, frame = 0, example = 0;

    function paint() {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      const photo = state.photo;
      if (photo) {
        const s = Math.min(canvas.width / photo.width, canvas.height / photo.height);
        const w = photo.width * s, h = photo.height * s;
        ctx.drawImage(photo, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
      }
      Object.assign(ctx, { strokeStyle: "#111", lineWidth: INK, lineCap: "round", lineJoin: "round" });
      for (const s of state.strokes) {
        ctx.beginPath();
        ctx.moveTo(s[0][0], s[0][1]);
        for (const [x, y] of s.slice(1)) ctx.lineTo(x, y);
        if (s.length === 1) ctx.lineTo(s[0][0] + 0.1, s[0][1]); // a dot
        ctx.stroke();
      }
    }

    function update() { // live: repainted and predicted at most once per display frame
      if (frame) return;
      frame = requestAnimationFrame(() => { frame = 0; paint(); changed(); });
    }

    function at(ev) {
      const r = canvas.getBoundingClientRect();
      return [(ev.clientX - r.left) * canvas.width / r.width, (ev.clientY - r.top) * canvas.height / r.height];
    }

    canvas.addEventListener("pointerdown", (ev) => {
      ev.preventDefault();
      canvas.setPointerCapture(ev.pointerId);
      state.photo = null; // drawing starts afresh: a photo is the server's to prepare
      current = [at(ev)];
      state.strokes.push(current);
      update();
    });
    canvas.addEventListener("pointermove", (ev) => {
      if (!current) return;
      const events = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
      for (const e of events.length ? events : [ev]) current.push(at(e));
      update();
    });
    for (const type of ["pointerup", "pointercancel"]) {
      canvas.addEventListener(type, () => { if (current) { current = null; update(); } });
    }

    function undo() { if (state.strokes.length) state.strokes.pop(); else state.photo = null; update(); }
    function clear() { state.strokes = []; state.photo = null; update(); }
    function drawExample() {
      const digit = EXAMPLES[example++ % EXAMPLES.length];
      state.strokes = digit.map((s) => smooth(s).map(([x, y]) => [80 + x * 200, 40 + y * 200]));
      state.photo = null;
      update();
    }

    buttons.undo.addEventListener("click", undo);
    buttons.clear.addEventListener("click", clear);
    buttons.example.addEventListener("click", drawExample);
    document.addEventListener("keydown", (ev) => {
      if (ev.target.matches("input, textarea") || ev.altKey || ev.metaKey) return;
      const key = ev.key.toLowerCase();
      if (key === "z") { ev.preventDefault(); undo(); }
      else if ((key === "delete" || key === "backspace") && !ev.ctrlKey) { ev.preventDefault(); clear(); }
      else if (key === "e" && !ev.ctrlKey) drawExample();
    });

    return {
      state, paint,
      empty: () => !state.strokes.length && !state.photo,
      pixels: () => ctx.getImageData(0, 0, canvas.width, canvas.height),
      setPhoto(photo) { state.strokes = []; state.photo = photo; paint(); },
    };
  }

  return { create };
})();
