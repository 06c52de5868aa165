"""The page explains itself, checked against torch in Debian's Chromium: a click on a
convolution's map shows the window, the kernel slices, the products, their sums, the bias and
the activation, and they add up to the number torch computes for that pixel; a click on a
pooling map shows the window whose largest value (or mean) is the pooled number; the saliency
map the page computes (a backward pass in JavaScript) equals mnist_cnn.saliency's.
For the lesson's network and a custom one (strides 2, 'same' padding, 8-channel input to a
convolution), on the served page and on the static export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from browser_kit import (
    CLASSIFY,
    MARKS,
    click_map,
    launch,
    make_custom_run,
    open_page,
    wait_until,
)

pytestmark = MARKS
AGREE = 1e-4  # the panel's arithmetic vs torch's map value; saliency, relative to its max
DIGITS = (0, 7)  # MNIST test images, passed through the page unchanged
IG_STEPS = 32  # the page's integrated gradients (app.js)

# The panel as numbers: every number element carries its exact value in data-v.
READ_PANEL = """(panel) => {
  const nums = (root, sel) => [...root.querySelectorAll(sel)].map((n) => Number(n.dataset.v));
  const one = (sel) => {
    const n = panel.querySelector(sel);
    return n ? Number(n.dataset.v) : null; };
  const rest = panel.querySelector('.rest');
  return {
    ...panel.dataset, where: { ...panel.querySelector('.where').dataset },
    slices: [...panel.querySelectorAll('.slice')].map((s) => ({
      channel: Number(s.dataset.channel), inputs: nums(s, '.inputs .num'),
      pads: [...s.querySelectorAll('.inputs td')].map((td) => td.classList.contains('pad')),
      weights: nums(s, '.weights .num'), products: nums(s, '.products .num'),
      sum: Number(s.querySelector('.slice-sum').dataset.v) })),
    window: [...panel.querySelectorAll('.window td')].map((td) => td.classList.contains('pad')
      ? null : Number(td.querySelector('.num').dataset.v)),
    chosen: [...panel.querySelectorAll('.window td')].findIndex(
      (td) => td.classList.contains('chosen')),
    rest: rest ? { v: Number(rest.dataset.v), count: Number(rest.dataset.count) } : null,
    sum: one('.total .sum'), bias: one('.total .bias'), pre: one('.total .pre'),
    result: one('.total .result'), activated: one('.activated'), value: one('.value'),
    texts: [...panel.querySelectorAll('.num')].map((n) => [Number(n.dataset.v), n.textContent]),
  };
}"""


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    return make_custom_run(tmp_path_factory.mktemp("custom") / "run")


@pytest.fixture(scope="module", params=["lesson", "custom"])
def run(request, trained_run, custom_run):
    return trained_run if request.param == "lesson" else custom_run


@pytest.fixture(scope="module", params=["served", "export"])
def url(request, run, tmp_path_factory):
    from mnist_cnn.export_web import export_web
    from mnist_cnn.predict import Predictor
    from mnist_cnn.serve import create_app
    from server_kit import background_server

    if request.param == "export":
        yield export_web(run, tmp_path_factory.mktemp("site") / "site").joinpath(
            "index.html").as_uri()
        return
    with background_server(create_app(Predictor.from_run(run))) as served:
        yield served + "/"


@pytest.fixture
def page(browser, url):
    context, pg = open_page(browser, url)
    yield pg
    context.close()
    assert pg.problems == [] and pg.blocked == []


def keras_window(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """(output size, padding before) by Keras' rule, written out here on its own."""
    if padding == "same":
        out = -(-n // s)
        return out, max((out - 1) * s + k - n, 0) // 2
    return (n - k) // s + 1, 0


def layer_facts(model, index: int):
    """(spec, kernel, strides, padding) of layer `index`, from model.json's description."""
    spec = model.arch.to_dict()["layers"][index]
    pair = lambda v: tuple(v) if isinstance(v, (list, tuple)) else (v, v)  # noqa: E731
    kernel = pair(spec.get("kernel_size") or spec.get("pool_size"))
    strides = pair(spec.get("strides") or kernel)
    return spec, kernel, strides, spec.get("padding", "valid")


def window_of(x: np.ndarray, top: int, left: int, kernel, fill: float) -> np.ndarray:
    """x (C, H, W) cut at the window, with `fill` where it reaches past the edges."""
    c, h, w = x.shape
    out = np.full((c, *kernel), fill, dtype=np.float64)
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            if 0 <= top + ky < h and 0 <= left + kx < w:
                out[:, ky, kx] = x[:, top + ky, left + kx]
    return out


def picks(values: np.ndarray) -> list[tuple[int, int, int]]:
    """Pixels to click on a layer's maps (C, H, W): the strongest of a middle map, and the two
    corners (where 'same' padding is)."""
    c, h, w = values.shape
    middle = c // 2
    y, x = np.unravel_index(np.abs(values[middle]).argmax(), (h, w))
    return [(middle, int(y), int(x)), (0, 0, 0), (c - 1, h - 1, w - 1)]


ACT = {"relu": lambda v: max(v, 0.0), "tanh": math.tanh, None: lambda v: v,
       "sigmoid": lambda v: 1 / (1 + math.exp(-v))}


def check_texts(panel: dict) -> None:
    """What a reader sees is each exact value rounded (3 or 4 decimals)."""
    for value, text in panel["texts"]:
        assert abs(float(text) - value) <= 0.5e-3 + 1e-9, (value, text)


def check_conv(panel, x, weight, bias, spec, kernel, strides, padding, want, cell, y, xx):
    c, h, w = x.shape
    top = y * strides[0] - keras_window(h, kernel[0], strides[0], padding)[1]
    left = xx * strides[1] - keras_window(w, kernel[1], strides[1], padding)[1]
    assert (int(panel["where"]["top"]), int(panel["where"]["left"])) == (top, left)
    cut = window_of(x, top, left, kernel, 0.0)  # (C, kh, kw), zeros in the padding
    outside = np.isnan(window_of(x, top, left, kernel, np.nan))[0].ravel().tolist()
    sums = (cut * weight[cell]).reshape(c, -1).sum(1)
    for s in panel["slices"]:
        ch = s["channel"]
        assert np.allclose(s["inputs"], cut[ch].ravel(), atol=1e-6)
        assert s["pads"] == outside
        assert np.allclose(s["weights"], weight[cell, ch].ravel(), atol=1e-7)
        assert np.allclose(s["products"], np.array(s["inputs"]) * s["weights"], atol=1e-6)
        assert abs(s["sum"] - sum(s["products"])) < 1e-5
    shown = [s["channel"] for s in panel["slices"]]
    others = sorted(set(range(c)) - set(shown))
    if others:  # the strongest slices in full, the others summed in one line
        assert panel["rest"]["count"] == len(others)
        assert abs(panel["rest"]["v"] - sums[others].sum()) < AGREE
        assert min(abs(sums[shown])) >= max(abs(sums[others])) - 1e-6
    else:
        assert panel["rest"] is None
    b = float(bias[cell]) if bias is not None else 0.0
    assert (panel["bias"] is None) == (bias is None)
    shown_total = sum(s["sum"] for s in panel["slices"]) + (panel["rest"] or {"v": 0})["v"]
    assert abs(panel["pre"] - (shown_total + b)) < AGREE  # the numbers shown add up
    assert abs(panel["pre"] - (sums.sum() + b)) < AGREE
    assert abs(ACT[spec.get("activation")](panel["pre"]) - want) < AGREE  # to torch's value
    assert abs(panel["activated"] - want) < AGREE and abs(panel["value"] - want) < AGREE


def check_pool(panel, x, spec, kernel, strides, padding, want, cell, y, xx):
    c, h, w = x.shape
    top = y * strides[0] - keras_window(h, kernel[0], strides[0], padding)[1]
    left = xx * strides[1] - keras_window(w, kernel[1], strides[1], padding)[1]
    assert (int(panel["where"]["top"]), int(panel["where"]["left"])) == (top, left)
    cut = window_of(x, top, left, kernel, np.nan)[cell].ravel()
    real = cut[~np.isnan(cut)]
    shown = np.array([np.nan if v is None else v for v in panel["window"]])
    assert np.array_equal(np.isnan(shown), np.isnan(cut))  # padding drawn as padding
    assert np.allclose(shown[~np.isnan(shown)], real, atol=1e-6)
    if spec["type"] == "MaxPooling2D":
        assert panel["chosen"] == int(np.nanargmax(cut))
        assert abs(shown[panel["chosen"]] - real.max()) < 1e-6
        assert abs(shown[panel["chosen"]] - want) < AGREE
    else:
        assert abs(panel["sum"] / len(real) - want) < AGREE
    assert abs(panel["result"] - want) < AGREE and abs(panel["value"] - want) < AGREE


def test_a_click_shows_the_arithmetic_torch_agrees_with(page, run, mnist):
    from mnist_cnn.predict import Predictor

    predictor = Predictor.from_run(run)
    state = predictor.model.state_dict()
    digit = mnist[1][0][DIGITS[0]]
    page.evaluate(CLASSIFY, [digit.ravel().tolist()])
    outputs = predictor.activations(digit)
    checked = {"conv": 0, "pool": 0}
    for index, out in enumerate(outputs):
        if out.kind not in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
            continue
        spec, kernel, strides, padding = layer_facts(predictor.model, index)
        x = digit[None] / 255.0 if index == 0 else outputs[index - 1].values
        for cell, y, xx in picks(out.values):
            click_map(page, out.name, out.values.shape, cell, y, xx)
            wait_until(page, f"""(() => {{ const d = document.getElementById('detail');
                return d && !d.hidden && d.dataset.layer === '{out.name}' && d.dataset.channel
                === '{cell}' && d.dataset.row === '{y}' && d.dataset.col === '{xx}'; }})()""")
            panel = page.locator("#detail").evaluate(READ_PANEL)
            check_texts(panel)
            want = float(out.values[cell, y, xx])
            if out.kind == "Conv2D":
                weight = state[f"layers.{out.name}.weight"].numpy()
                bias = state.get(f"layers.{out.name}.bias")
                check_conv(panel, x, weight, None if bias is None else bias.numpy(), spec,
                           kernel, strides, padding, want, cell, y, xx)
                checked["conv"] += 1
            else:
                check_pool(panel, x, spec, kernel, strides, padding, want, cell, y, xx)
                checked["pool"] += 1
    assert checked["conv"] >= 6 and checked["pool"] >= 6


# A network for the rarer paths: a softmax over a convolution's channels, a pooling window
# larger than its stride with 'same' padding, a convolution without activation, a softmax
# in a hidden Dense layer, and a last layer that gives logits itself.
ODD = [
    {"type": "Conv2D", "filters": 4, "kernel_size": 3, "padding": "same",
     "activation": "softmax"},
    {"type": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
    {"type": "Conv2D", "filters": 3, "kernel_size": [2, 3], "strides": [2, 1],
     "activation": None},
    {"type": "Flatten"},
    {"type": "Dense", "units": 8, "activation": "softmax"},
    {"type": "Dense", "units": 10, "activation": None},
]
EVERY_PIXEL = """(digit) => {
  const m = mnistPage.model, r = MnistEngine.forward(m, Float32Array.from(digit, (v) => v / 255));
  const out = {};
  m.layers.forEach((L, i) => {
    if (L.type !== 'Conv2D' && !L.type.endsWith('Pooling2D')) return;
    const x = i ? r.outputs[i - 1].data : r.input, [oh, ow, c] = L.outShape, got = [];
    for (let o = 0; o < c; o++) for (let y = 0; y < oh; y++) for (let xx = 0; xx < ow; xx++) {
      const maps = r.outputs[i].data;
      got.push(L.type === 'Conv2D' ? MnistArithmetic.conv(L, x, maps, o, y, xx).activated
        : MnistArithmetic.pool(L, x, maps, o, y, xx).result);
    }
    out[L.name] = got;
  });
  return out; }"""


def every_pixel_agrees(page, run, digit) -> int:
    """The panel's arithmetic for every pixel of every conv and pooling map, against torch's
    maps; returns how many pixels were checked."""
    from mnist_cnn.predict import Predictor

    got = page.evaluate(EVERY_PIXEL, digit.ravel().tolist())
    want = {o.name: o.values.ravel() for o in Predictor.from_run(run).activations(digit)}
    for name, values in got.items():
        assert np.abs(np.array(values) - want[name]).max() < AGREE, name
    return sum(len(v) for v in got.values())


def test_the_arithmetic_of_every_pixel_equals_torch(page, run, mnist):
    assert every_pixel_agrees(page, run, mnist[1][0][DIGITS[1]]) > 1000


def test_rarer_layers_arithmetic_and_saliency(browser, tmp_path, mnist):
    from mnist_cnn.checkpoint import save_model
    from mnist_cnn.export_web import export_web
    from mnist_cnn.model import Architecture, build_model
    from mnist_cnn.predict import Predictor
    from mnist_cnn.saliency import integrated_gradients

    arch = Architecture.from_dict({"name": "odd", "input_shape": [28, 28, 1], "layers": ODD})
    save_model(tmp_path / "run", build_model(arch, seed=3), {"dataset": "mnist"})
    site = export_web(tmp_path / "run", tmp_path / "site")
    context, page = open_page(browser, (site / "index.html").as_uri())
    digit = mnist[1][0][DIGITS[0]]
    assert every_pixel_agrees(page, tmp_path / "run", digit) > 1000
    js = page.evaluate("""(d) => Array.from(MnistGradient.integratedGradients(mnistPage.model,
        Float32Array.from(d, (v) => v / 255), 32).values)""", digit.ravel().tolist())
    context.close()
    x = torch.from_numpy(digit.astype(np.float32) / 255.0)[None, None]
    want = integrated_gradients(Predictor.from_run(tmp_path / "run").model, x, steps=IG_STEPS)
    want = want.values[0, 0].numpy().ravel()
    assert np.abs(np.array(js) - want).max() <= AGREE * np.abs(want).max()
    assert page.problems == [] and page.blocked == []


def test_arrow_keys_move_the_window_by_the_stride(page, run, mnist):
    from mnist_cnn.predict import Predictor

    predictor = Predictor.from_run(run)
    digit = mnist[1][0][DIGITS[1]]
    page.evaluate(CLASSIFY, [digit.ravel().tolist()])
    for index, out in enumerate(predictor.activations(digit)):
        if out.kind not in ("Conv2D", "MaxPooling2D", "AveragePooling2D"):
            continue
        _, _, strides, _ = layer_facts(predictor.model, index)
        click_map(page, out.name, out.values.shape, 0, 0, 0)
        wait_until(page, f"document.getElementById('detail')?.dataset.layer === '{out.name}'")
        where = page.locator("#detail .where")
        left, top = int(where.get_attribute("data-left")), int(where.get_attribute("data-top"))
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
        assert page.locator("#detail").get_attribute("data-col") == "1"
        assert int(where.get_attribute("data-left")) == left + strides[1]  # the jump: a stride
        assert int(page.locator("#detail .where").get_attribute("data-top")) == top + strides[0]
        page.keyboard.press("Escape")
        assert page.locator("#detail").is_hidden()


def test_saliency_equals_torch(page, run, mnist):
    from mnist_cnn.predict import Predictor
    from mnist_cnn.saliency import gradient_x_input, integrated_gradients

    model = Predictor.from_run(run).model
    digits = mnist[1][0][list(DIGITS)]
    x = torch.from_numpy(digits.astype(np.float32) / 255.0)[:, None]
    ig = integrated_gradients(model, x, steps=IG_STEPS)
    gxi = gradient_x_input(model, x)
    for k, digit in enumerate(digits):
        page.evaluate("() => { mnistPage.saliency = null; }")
        page.evaluate(CLASSIFY, [digit.ravel().tolist()])  # the page computes it, then shows it
        wait_until(page, "mnistPage.saliency !== null && mnistPage.saliency !== undefined")
        shown = page.evaluate("mnistPage.saliency")
        assert shown["input"] == digit.ravel().tolist()
        assert shown["target"] == int(ig.target[k])
        want = ig.values[k, 0].numpy().ravel()
        assert np.abs(np.array(shown["values"]) - want).max() <= AGREE * np.abs(want).max()
        js = page.evaluate("""(d) => Array.from(MnistGradient.gradientXInput(mnistPage.model,
            Float32Array.from(d, (v) => v / 255)).values)""", digit.ravel().tolist())
        want = gxi.values[k, 0].numpy().ravel()
        assert np.abs(np.array(js) - want).max() <= AGREE * np.abs(want).max()
    assert page.locator("#why-caption").text_content().startswith(f"why {int(ig.target[-1])}")
