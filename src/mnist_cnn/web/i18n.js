// Every word the page shows, in English and Korean, keyed by message id; the language comes
// from the reader's choice (remembered in local storage), else the browser's language.
// Messages are templates: {name} is filled with a value, or with an element (code, a number)
// by fill(). Elements marked data-i18n (text), data-i18n-html (our own markup) and
// data-i18n-attr ("attribute:id ...") are filled by apply(). Names of things (layer names and
// types, ReLU, softmax, 'same', mnist-cnn commands, model.json) stay as they are.
// A classic script; defines the global `MnistI18n`.
"use strict";

var MnistI18n = (function () {
  const KEY = "mnist-cnn-page-lang";
  const NAMES = { en: "English", ko: "한국어" };
  const MESSAGES = {
    en: {
      "page.title": "mnist-cnn · draw a digit",
      "head.tagline": "draw a digit, watch every layer respond",
      "head.loading": "loading the model…",
      "lang.aria": "Language",
      "play.aria": "Draw and predict",
      "draw.title": "Your digit",
      "pad.aria": "Drawing area: draw one digit with the mouse, a finger or a pen",
      "btn.undo": "Undo", "btn.undo_title": "Undo the last stroke (Z)",
      "btn.clear": "Clear", "btn.clear_title": "Clear the drawing (Delete)",
      "btn.example": "Example", "btn.example_title": "Draw an example digit (E)",
      "btn.photo": "Photo…", "btn.photo_title": "Predict a photo of a digit",
      "draw.hint": "Mouse, finger or pen. Keys: <kbd translate=\"no\">Z</kbd> undo, <kbd translate=\"no\">Del</kbd> clear, <kbd translate=\"no\">E</kbd> example.",
      "photo.note": "Photos need the server (<code translate=\"no\">mnist-cnn serve</code>): it cleans up paper, shadows and camera noise. Drawings work right here.",
      "answer.title": "The network says",
      "answer.start": "Draw a digit to start.",
      "answer.sure": "{p} sure it is a {d}",
      "input.aria": "The 28x28 image the network sees",
      "input.caption": "input · 28×28, as the network sees it",
      "why.aria": "Saliency: which pixels pushed the network towards its answer",
      "why.empty": "why: red pixels pushed towards the answer, blue against",
      "why.caption": "why {d}: red pushed towards {d}, blue against (integrated gradients, {steps} steps from a black image)",
      "bars.aria": "Probability of each digit",
      "nodigit.blank": "no digit found: the image is blank",
      "nodigit.faint": "no digit found: nothing stands out from the background",
      "nodigit.photo": "no digit found in the photo",
      "photo.refused": "the server refused the photo: {error}",
      "photo.no_answer": "the server did not answer ({error})",
      "trust.none": "Uncalibrated: no \"not sure\" line yet. Run {cmd} on this run to choose one on held-out images.",
      "trust.stale": "Uncalibrated: the \"not sure\" line in model.json was chosen for other weights. Run {cmd} again.",
      "trust.idle": "Answers under {line} are marked \"not sure\" ({where}).",
      "trust.sure": "Above the \"not sure\" line of {line} ({where}).",
      "trust.unsure": "Not sure: {p} is under the line of {line}. Below it, answers were right less than {acc} of the time ({where}).",
      "trust.zero": "No \"not sure\" line: on {n} held-out images even the least sure answers were right at least {acc} of the time.",
      "trust.validation": "chosen on {n} validation images",
      "trust.training": "chosen on {n} training images the model learned from, so it is lenient",
      "inside.title": "Inside the network",
      "inside.note": "each layer's output for your digit: brighter = stronger; blue below zero, red above, where a layer's values can be negative",
      "inside.click": "Click a pixel of a convolution's or a pooling layer's maps to see the arithmetic behind it.",
      "model.title": "The model",
      "model.dataset": "trained on {dataset}",
      "model.accuracy": "test accuracy {acc}",
      "model.params": "{n} parameters",
      "model.params_all": "{n} parameters in all",
      "model.ensemble": "an ensemble of {n} networks: the answer is the mean of their probabilities; the layers shown are the first network's",
      "model.error": "could not load the model: {error}",
      "filters.aria": "First-layer filters",
      "filters.title": "{name}'s {f} learned {k} filters",
      "filters.note": "blue = negative weight, red = positive. Each filter slides over the input; its responses are the {f} maps of {name} above.",
      "summary.title": "Summary",
      "footer.note": "The network runs in this browser; nothing loads from elsewhere.",
      "footer.api": "API: <a href=\"docs\">/docs</a>.",
      "act.relu": "ReLU", "act.sigmoid": "sigmoid", "act.tanh": "tanh", "act.softmax": "softmax",
      "act.linear": "linear", "act.none": "no activation",
      "note.stride": ", stride {s}",
      "note.same": ", 'same' padding",
      "layer.conv": "{c} feature maps of {size}: one per learned {k} filter{extras}, {act}",
      "layer.maxpool": "{k} max pooling{extras}: the {c} maps shrink to {size}",
      "layer.avgpool": "{k} average pooling{extras}: the {c} maps shrink to {size}",
      "layer.flatten": "the maps laid out in one row of {n} numbers",
      "layer.dense": "{n} units, {act}",
      "layer.output": "{n} outputs, softmax: one probability per class",
      "layer.dropout": "drops {p}% of values in training only; here it passes them on",
      "layer.bn": "each channel rescaled with the mean and variance learned in training",
      "aria.bars": "Probability of each class",
      "aria.maps": "{name} output {shape}",
      "aria.maps_click": "{name} output {shape}: click a pixel, or press Enter, to see its arithmetic",
      "detail.title": "{layer} · map {map} · row {row}, column {col}",
      "detail.close": "Close",
      "detail.the_input": "the input",
      "detail.conv_lead": "The {k} filter lies on a {k} window of {input}: each value times the weight over it, all added up, plus the bias, then the activation.",
      "detail.conv_lead_many": "The filter has one {k} slice per input channel ({c} here): each slice lies on its channel's window, values times weights, everything added up, plus the bias, then the activation. The {shown} strongest slices in full:",
      "detail.max_lead": "Max pooling keeps the largest value of each {k} window. The window moves by the stride ({s}), so {from} becomes {to}.",
      "detail.mean_lead": "Average pooling keeps the mean of each {k} window. The window moves by the stride ({s}), so {from} becomes {to}.",
      "detail.window": "{input}, channel {channel}: the window covers rows {rows}, columns {cols}",
      "detail.window_one": "{input}: the window covers rows {rows}, columns {cols}",
      "detail.next": "dashed: the next pixel's window, moved by the stride {s}",
      "detail.pad_conv": "hatched: 'same' padding, counted as zeros",
      "detail.pad_max": "hatched: 'same' padding, never the largest",
      "detail.pad_mean": "hatched: 'same' padding, left out of the mean",
      "detail.pixel": "{layer}, map {map}: the pixel at row {row}, column {col} (click another)",
      "detail.channel": "channel {channel} of {input}",
      "detail.one_channel": "the window's values, the filter's weights, their products",
      "detail.inputs": "input", "detail.weights": "weights", "detail.products": "products",
      "detail.pad": "pad",
      "detail.rest": "+ the other {n} channels, added up the same way:",
      "detail.bias": "bias", "detail.no_bias": "no bias",
      "detail.map_value": "the map's value",
      "detail.max_result": "the largest:",
      "detail.real_cells": "the mean of {n} cells; padding is not counted",
      "detail.window_max": "the window; the largest is outlined",
      "detail.window_mean": "the window",
      "detail.keys": "Arrow keys move the pixel; Esc closes.",
    },
    ko: {
      "page.title": "mnist-cnn · 숫자 그리기",
      "head.tagline": "숫자를 그리고, 층마다 어떻게 반응하는지 보세요",
      "head.loading": "모델을 불러오는 중…",
      "lang.aria": "언어",
      "play.aria": "그리고 예측하기",
      "draw.title": "내가 그린 숫자",
      "pad.aria": "그리기 영역: 마우스, 손가락이나 펜으로 숫자 하나를 그리세요",
      "btn.undo": "되돌리기", "btn.undo_title": "마지막 획 되돌리기 (Z)",
      "btn.clear": "지우기", "btn.clear_title": "그림 지우기 (Delete)",
      "btn.example": "예시", "btn.example_title": "예시 숫자 그리기 (E)",
      "btn.photo": "사진…", "btn.photo_title": "숫자 사진으로 예측하기",
      "draw.hint": "마우스, 손가락, 펜 모두 됩니다. 키: <kbd translate=\"no\">Z</kbd> 되돌리기, <kbd translate=\"no\">Del</kbd> 지우기, <kbd translate=\"no\">E</kbd> 예시.",
      "photo.note": "사진은 서버(<code translate=\"no\">mnist-cnn serve</code>)가 있어야 합니다. 서버가 종이, 그림자, 카메라 잡음을 정리합니다. 그림은 여기서 바로 됩니다.",
      "answer.title": "신경망의 답",
      "answer.start": "숫자를 그려 보세요.",
      "answer.sure": "{p} 확률로 {d}입니다",
      "input.aria": "신경망이 보는 28x28 이미지",
      "input.caption": "입력 · 28×28, 신경망이 보는 그대로",
      "why.aria": "돌출 맵: 어떤 픽셀이 신경망을 답 쪽으로 밀었는지",
      "why.empty": "이유: 빨간 픽셀은 답 쪽으로, 파란 픽셀은 반대쪽으로 밀었습니다",
      "why.caption": "{d}인 이유: 빨강은 {d} 쪽으로, 파랑은 반대쪽으로 밀었습니다 (적분 그래디언트, 검은 이미지에서 {steps}단계)",
      "bars.aria": "숫자별 확률",
      "nodigit.blank": "숫자를 찾지 못했습니다: 빈 이미지입니다",
      "nodigit.faint": "숫자를 찾지 못했습니다: 배경에서 두드러지는 것이 없습니다",
      "nodigit.photo": "사진에서 숫자를 찾지 못했습니다",
      "photo.refused": "서버가 사진을 거절했습니다: {error}",
      "photo.no_answer": "서버가 응답하지 않았습니다 ({error})",
      "trust.none": "보정되지 않음: 아직 '확신 없음' 기준선이 없습니다. 이 실행에 {cmd} 명령을 실행하면 따로 떼어 둔 이미지로 기준선을 정합니다.",
      "trust.stale": "보정되지 않음: model.json의 '확신 없음' 기준선은 다른 가중치로 정한 것입니다. {cmd} 명령을 다시 실행하세요.",
      "trust.idle": "확률이 {line} 미만인 답은 '확신 없음'으로 표시합니다 ({where}).",
      "trust.sure": "'확신 없음' 기준선 {line}보다 높습니다 ({where}).",
      "trust.unsure": "확신 없음: {p}는 기준선 {line}보다 낮습니다. 이 선 아래의 답은 {acc}보다 적게 맞았습니다 ({where}).",
      "trust.zero": "'확신 없음' 기준선 없음: 떼어 둔 이미지 {n}개에서 가장 확신이 낮은 답들도 {acc} 이상 맞았습니다.",
      "trust.validation": "검증 이미지 {n}개로 정함",
      "trust.training": "모델이 학습한 훈련 이미지 {n}개로 정해서 너그러운 기준입니다",
      "inside.title": "신경망의 속",
      "inside.note": "내가 그린 숫자에 대한 층별 출력: 밝을수록 강한 반응, 값이 음수가 될 수 있는 층은 0 아래가 파랑, 위가 빨강",
      "inside.click": "합성곱 층이나 풀링 층의 맵에서 픽셀을 누르면 그 값을 만든 계산이 보입니다.",
      "model.title": "모델",
      "model.dataset": "학습 데이터 {dataset}",
      "model.accuracy": "테스트 정확도 {acc}",
      "model.params": "매개변수 {n}개",
      "model.params_all": "매개변수 모두 {n}개",
      "model.ensemble": "신경망 {n}개의 앙상블: 답은 이들 확률의 평균이고, 보이는 층은 첫 번째 신경망의 것입니다",
      "model.error": "모델을 불러오지 못했습니다: {error}",
      "filters.aria": "첫 층의 필터",
      "filters.title": "{name}: 학습된 {k} 필터 {f}개",
      "filters.note": "파랑은 음의 가중치, 빨강은 양의 가중치입니다. 필터마다 입력 위를 미끄러지며 움직이고, 그 반응이 위의 {name} 맵 {f}개입니다.",
      "summary.title": "요약",
      "footer.note": "신경망은 이 브라우저 안에서 돌아갑니다. 다른 곳에서 불러오는 것은 없습니다.",
      "footer.api": "<a href=\"docs\">API 문서</a>.",
      "act.relu": "ReLU", "act.sigmoid": "시그모이드", "act.tanh": "tanh", "act.softmax": "softmax",
      "act.linear": "선형", "act.none": "활성화 함수 없음",
      "note.stride": ", 스트라이드 {s}",
      "note.same": ", 'same' 패딩",
      "layer.conv": "{size} 특성 맵 {c}개: 학습된 {k} 필터마다 하나{extras}, {act}",
      "layer.maxpool": "{k} 최대 풀링{extras}: 맵 {c}개가 {size}(으)로 줄어듭니다",
      "layer.avgpool": "{k} 평균 풀링{extras}: 맵 {c}개가 {size}(으)로 줄어듭니다",
      "layer.flatten": "맵을 숫자 {n}개의 한 줄로 펼칩니다",
      "layer.dense": "유닛 {n}개, {act}",
      "layer.output": "출력 {n}개, softmax: 클래스마다 확률 하나",
      "layer.dropout": "학습할 때만 값의 {p}%를 버리고, 여기서는 그대로 넘깁니다",
      "layer.bn": "채널마다 학습 때 구한 평균과 분산으로 값을 다시 맞춥니다",
      "aria.bars": "클래스별 확률",
      "aria.maps": "{name}의 출력 {shape}",
      "aria.maps_click": "{name}의 출력 {shape}: 픽셀을 누르거나 Enter 키를 누르면 계산이 보입니다",
      "detail.title": "{layer} · {map}번 맵 · {row}행 {col}열",
      "detail.close": "닫기",
      "detail.the_input": "입력",
      "detail.conv_lead": "{k} 필터를 {input}의 {k} 창에 겹쳐 놓고, 값마다 그 위의 가중치를 곱해 모두 더한 뒤 편향을 더하고 활성화 함수를 거칩니다.",
      "detail.conv_lead_many": "필터에는 입력 채널마다 {k} 조각이 하나씩 있습니다(여기서는 {c}개). 조각마다 그 채널의 창에 겹쳐 값과 가중치를 곱하고, 모두 더한 뒤 편향을 더하고 활성화 함수를 거칩니다. 가장 크게 기여한 조각 {shown}개를 모두 보여 줍니다:",
      "detail.max_lead": "최대 풀링은 {k} 창마다 가장 큰 값만 남깁니다. 창이 스트라이드({s})만큼 움직이므로 크기가 {from}에서 {to}(으)로 줄어듭니다.",
      "detail.mean_lead": "평균 풀링은 {k} 창마다 평균을 남깁니다. 창이 스트라이드({s})만큼 움직이므로 크기가 {from}에서 {to}(으)로 줄어듭니다.",
      "detail.window": "{input}의 {channel}번 채널: 창이 {rows}행, {cols}열을 덮습니다",
      "detail.window_one": "{input}: 창이 {rows}행, {cols}열을 덮습니다",
      "detail.next": "점선: 다음 픽셀의 창, 스트라이드 {s}만큼 옮긴 자리",
      "detail.pad_conv": "빗금: 'same' 패딩, 0으로 계산",
      "detail.pad_max": "빗금: 'same' 패딩, 가장 큰 값이 될 수 없음",
      "detail.pad_mean": "빗금: 'same' 패딩, 평균에서 뺌",
      "detail.pixel": "{layer}의 {map}번 맵: {row}행 {col}열의 픽셀 (다른 픽셀도 눌러 보세요)",
      "detail.channel": "{input}의 {channel}번 채널",
      "detail.one_channel": "창의 값, 필터의 가중치, 그 곱",
      "detail.inputs": "입력", "detail.weights": "가중치", "detail.products": "곱",
      "detail.pad": "패딩",
      "detail.rest": "+ 나머지 채널 {n}개를 같은 방법으로 더한 값:",
      "detail.bias": "편향", "detail.no_bias": "편향 없음",
      "detail.map_value": "맵의 값",
      "detail.max_result": "가장 큰 값:",
      "detail.real_cells": "칸 {n}개의 평균, 패딩은 세지 않음",
      "detail.window_max": "창: 가장 큰 값에 테두리",
      "detail.window_mean": "창",
      "detail.keys": "화살표 키로 픽셀을 옮기고, Esc 키로 닫습니다.",
    },
  };

  const listeners = [];
  let lang = chosen();

  function chosen() {
    let saved = null;
    try { saved = localStorage.getItem(KEY); } catch { /* storage off: not remembered */ }
    if (saved in MESSAGES) return saved;
    return (navigator.language || "").toLowerCase().startsWith("ko") ? "ko" : "en";
  }

  function message(id) {
    const text = MESSAGES[lang][id];
    return text == null ? MESSAGES.en[id] ?? id : text;
  }

  // A message as text, its {fields} filled with plain values.
  function t(id, fields = {}) {
    return message(id).replace(/\{(\w+)\}/g, (whole, name) => (name in fields ? String(fields[name]) : whole));
  }

  // A message into `node`, its {fields} filled with text or elements (a field used twice gets
  // a copy of its element).
  function fill(node, id, fields = {}) {
    const parts = message(id).split(/\{(\w+)\}/), used = new Set();
    node.replaceChildren(...parts.map((part, i) => {
      if (i % 2 === 0 || !(part in fields)) return i % 2 ? `{${part}}` : part;
      const value = fields[part];
      if (!(value instanceof Node)) return String(value);
      const copy = used.has(part) ? value.cloneNode(true) : value;
      used.add(part);
      return copy;
    }));
  }

  // Program text (a command, an error from elsewhere): shown as it is, in every language.
  function code(text) {
    return Object.assign(document.createElement("code"), { textContent: text, translate: false });
  }

  function apply() {
    document.documentElement.lang = lang;
    document.title = t("page.title");
    for (const node of document.querySelectorAll("[data-i18n]")) fill(node, node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-html]")) node.innerHTML = message(node.dataset.i18nHtml);
    for (const node of document.querySelectorAll("[data-i18n-attr]")) {
      for (const pair of node.dataset.i18nAttr.split(/\s+/)) {
        const [attr, id] = pair.split(":");
        node.setAttribute(attr, t(id));
      }
    }
    for (const button of document.querySelectorAll("[data-lang]")) button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }

  function set(next) {
    if (!(next in MESSAGES) || next === lang) return;
    lang = next;
    try { localStorage.setItem(KEY, next); } catch { /* storage off: not remembered */ }
    apply();
    listeners.forEach((fn) => fn(lang));
  }

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("[data-lang]");
    if (button) set(button.dataset.lang);
  });

  return {
    t, fill, code, apply, set, onChange: (fn) => listeners.push(fn),
    get lang() { return lang; }, messages: MESSAGES, names: NAMES,
  };
})();
