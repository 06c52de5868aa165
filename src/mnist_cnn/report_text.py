"""Every visible sentence of the report page, in English and Korean, keyed by message id.

Messages are `str.format` templates; both languages take the same fields. report_html.py
is the only reader. Figure labels stay English (they are pictures); the page says so.
"""

from __future__ import annotations

from collections.abc import Callable

EN: dict[str, str] = {
    "title": "mnist-cnn report: {run}",
    "lang.note": "",
    # the headline table
    "head.dataset": "dataset",
    "head.architecture": "architecture",
    "head.architecture_value": "{name} ({params} parameters)",
    "head.accuracy": "test accuracy",
    "head.accuracy_value": "{accuracy} ({right} of {total} images)",
    "head.loss": "test loss",
    "head.mistakes": "test mistakes",
    "head.epochs": "epochs",
    "head.val_accuracy": "validation accuracy",
    "head.recipe": "recipe",
    "head.batch_size": "batch size",
    "head.lr": "learning rate",
    "head.train_time": "training time",
    "head.train_time_value": "{seconds} s on {device} ({precision})",
    "head.trained": "trained",
    "head.source": "source",
    "head.ensemble": "ensemble",
    "head.ensemble_value": "the mean of {count} networks' probabilities (the filters and maps "
                           "shown are the first network's)",
    "head.imported_value": "imported from {file}",
    # sections
    "sec.summary": "Model summary",
    "sec.figures": "Figures",
    "sec.feature_maps": "Feature maps, one test image per class",
    "sec.meta": "Run metadata (model.json)",
    "class": "class {name}",
    # the lesson's figures: short titles (alt text) and captions
    "fig.curves": "Training curves",
    "cap.curves": "Training curves: loss and accuracy after each epoch on the training images "
                  "(and the held-out validation images when the run kept some); the dotted "
                  "line is the final model on the test set.",
    "fig.confusion": "Confusion matrix",
    "cap.confusion": "Confusion matrix on the test set: row = true class, column = the model's "
                     "answer; the diagonal is right, everything else a mistake. Right: each "
                     "class's accuracy.",
    "fig.mistakes": "The most confident mistakes",
    "cap.mistakes": "The test images the model got wrong with the highest confidence.",
    "fig.right": "Test images read right",
    "cap.right": "For comparison, test images the model read right: the first two of each "
                 "class in the test set, with the model's answer and how sure it was.",
    "fig.filters": "The first convolution's filters",
    "cap.filters": "The first convolution's learned 3x3 filters: each slides over the digit "
                   "and responds where the ink matches its pattern (red weights add, blue "
                   "subtract).",
    "fig.architecture": "The network's architecture",
    "cap.architecture": "The network, input to output: each block's height follows the map's "
                        "size and its width the number of channels; parameters under each "
                        "layer.",
    "fig.feature_maps": "Feature maps for class {name}",
    "cap.feature_maps": "What each conv and pooling layer sees for one test image: each small "
                        "square is one filter's response map (bright = strong response); "
                        "pooling halves the size. Top: the network's probability for each "
                        "class.",
    # saliency
    "sec.saliency": "Why did it answer that? Saliency",
    "p.saliency": "Integrated gradients: the gradient of the answer's logit (its score before "
                  "softmax), averaged along the straight path from a black image (no ink) to "
                  "the digit in {steps} steps, times the digit. Red pixels pushed the network "
                  "towards its answer, blue ones against it; each image is scaled to its own "
                  "strongest pixel. The attributions add up to the change of the logit from "
                  "the black image to the digit: here within {median} (median) and {max} "
                  "(worst image). With a black starting image only ink can carry "
                  "attribution: a missing stroke does not show.",
    "fig.saliency_mistakes": "Saliency of the most confident mistakes",
    "cap.saliency_mistakes": "The most confident mistakes on the test set, explained for the "
                             "wrong answer: the red ink is what looked like the wrong class "
                             "to the network.",
    "fig.saliency_examples": "Saliency of one correct image per class",
    "cap.saliency_examples": "One correct test image per class. Middle: integrated gradients. "
                             "Bottom: gradient x input (the gradient at the digit itself, "
                             "times the digit; faster, noisier).",
    # calibration
    "sec.calibration": "How far can I trust its confidence? Calibration",
    "p.calibration": "A well-calibrated model that says 90% is right 9 times out of 10. The "
                     "expected calibration error (ECE) is the gap between confidence and "
                     "accuracy, averaged over 15 equal-width confidence bins and weighted by "
                     "the images in each. Temperature scaling divides the logits by one "
                     "number T, fitted on held-out images (never the test set) to make the "
                     "probabilities as likely as possible; the answers do not change.",
    "cal.fit_on": "T and the threshold fitted on",
    "cal.fit_validation": "the run's validation split: training images {first} to {last} "
                          "({count} images), which the model never trained on",
    "cal.fit_training": "the last {count} training images ({first} to {last})",
    "cal.seen_warning": "This run kept no validation split, so T and the threshold were "
                        "fitted on images the model saw during training. It is surer of those "
                        "than of new images, so treat both as optimistic estimates: the "
                        "threshold may be too lenient and the scaled probabilities a little "
                        "too confident on new digits. Train with --validation-split 0.1 for "
                        "honest values.",
    "cal.temperature": "temperature T",
    "cal.t_sharpen": "{t} (below 1: the raw probabilities were too modest, so they are "
                     "sharpened)",
    "cal.t_soften": "{t} (above 1: the raw probabilities were overconfident, so they are "
                    "softened)",
    "cal.ece_before": "ECE on the test set, raw softmax",
    "cal.ece_after": "ECE on the test set, after temperature scaling",
    "cal.not_sure": "“not sure” below a top probability of",
    "cal.not_sure_value": "{raw} (raw softmax); {calibrated} (after temperature scaling)",
    "cal.rule": "The “not sure” threshold is the highest top probability t such that, of the "
                "held-out images answered with a lower top probability than t, fewer than "
                "{target} are right. An answer below it should be shown as a guess.",
    "cal.flagged": "test images below the threshold",
    "cal.flagged_value": "{count} ({share} of the test set): {flagged} of them right, "
                         "against {rest} of the others",
    "cal.flagged_none": "none",
    "cal.json": "These values are also in calibration.json beside this page.",
    "fig.reliability": "Reliability diagram",
    "cap.reliability": "Reliability diagram on the test set: for each confidence bin, the "
                       "share of right answers (bars) against the perfect diagonal; the "
                       "hatched part is the gap. Below: how many images fall in each bin "
                       "(log scale). Left: raw softmax; right: after temperature scaling.",
    # robustness
    "sec.robustness": "How far do the answers hold? Robustness",
    "p.robustness": "Accuracy on the first {count} test images when each image is changed a "
                    "little (without a change: {plain}). Rotation and shifts move the whole "
                    "digit; thickness grows or thins the strokes by one pixel per step; "
                    "noise adds random grey; FGSM (the fast gradient sign method) moves "
                    "every pixel by epsilon in the direction that raises the loss most, "
                    "the worst small change to first order.",
    "rob.accuracy": "accuracy",
    "fam.rotation": "rotation (degrees, + anticlockwise)",
    "fam.shift_x": "horizontal shift (pixels, + right)",
    "fam.shift_y": "vertical shift (pixels, + down)",
    "fam.thickness": "stroke thickness (steps, + thicker)",
    "fam.noise": "Gaussian noise (standard deviation)",
    "fam.fgsm": "FGSM (epsilon, the most a pixel changes)",
    "fig.robustness": "Accuracy under perturbations",
    "cap.robustness": "Accuracy against the size of each perturbation.",
    "fig.robustness_examples": "One test image under every perturbation",
    "cap.robustness_examples": "The first test image under every level of every perturbation, "
                               "with the network's answer (green right, red wrong).",
}

KO: dict[str, str] = {
    "title": "mnist-cnn 보고서: {run}",
    "lang.note": "그림 안의 글자는 영어로 되어 있습니다.",
    "head.dataset": "데이터셋",
    "head.architecture": "구조",
    "head.architecture_value": "{name} (매개변수 {params}개)",
    "head.accuracy": "테스트 정확도",
    "head.accuracy_value": "{accuracy} (이미지 {total}장 중 {right}장)",
    "head.loss": "테스트 손실",
    "head.mistakes": "테스트 오답 수",
    "head.epochs": "에포크",
    "head.val_accuracy": "검증 정확도",
    "head.recipe": "학습 방식",
    "head.batch_size": "배치 크기",
    "head.lr": "학습률",
    "head.train_time": "학습 시간",
    "head.train_time_value": "{device}에서 {seconds}초 ({precision})",
    "head.trained": "학습 일시",
    "head.source": "출처",
    "head.ensemble": "앙상블",
    "head.ensemble_value": "네트워크 {count}개의 확률 평균 (보이는 필터와 특성 맵은 첫 번째 "
                           "네트워크의 것입니다)",
    "head.imported_value": "{file}에서 가져옴",
    "sec.summary": "모델 요약",
    "sec.figures": "그림",
    "sec.feature_maps": "특성 맵: 클래스마다 테스트 이미지 한 장",
    "sec.meta": "실행 메타데이터 (model.json)",
    "class": "클래스 {name}",
    "fig.curves": "학습 곡선",
    "cap.curves": "학습 곡선: 에포크마다 학습 이미지(실행에서 검증 이미지를 따로 두었다면 "
                  "그 이미지도)에 대한 손실과 정확도입니다. 점선은 최종 모델의 테스트 세트 "
                  "결과입니다.",
    "fig.confusion": "혼동 행렬",
    "cap.confusion": "테스트 세트의 혼동 행렬: 행은 실제 클래스, 열은 모델의 답입니다. "
                     "대각선은 정답이고 나머지는 모두 오답입니다. 오른쪽: 클래스별 정확도.",
    "fig.mistakes": "가장 확신한 오답",
    "cap.mistakes": "모델이 가장 높은 확신으로 틀린 테스트 이미지들입니다.",
    "fig.right": "맞게 읽은 테스트 이미지",
    "cap.right": "비교를 위해, 모델이 맞게 읽은 테스트 이미지: 테스트 세트에서 클래스마다 "
                 "처음 두 장과 모델의 답, 그리고 그 확신도입니다.",
    "fig.filters": "첫 번째 합성곱의 필터",
    "cap.filters": "첫 번째 합성곱 층이 학습한 3x3 필터: 각 필터가 숫자 위를 미끄러지며 "
                   "잉크가 자신의 패턴과 맞는 곳에서 반응합니다(빨간 가중치는 더하고, 파란 "
                   "가중치는 뺍니다).",
    "fig.architecture": "신경망 구조",
    "cap.architecture": "입력에서 출력까지의 신경망: 블록의 높이는 맵의 크기를, 너비는 채널 "
                        "수를 따릅니다. 층마다 아래에 매개변수 수가 있습니다.",
    "fig.feature_maps": "클래스 {name}의 특성 맵",
    "cap.feature_maps": "테스트 이미지 한 장에 대해 각 합성곱 층과 풀링 층이 보는 것: 작은 "
                        "정사각형 하나가 필터 하나의 반응 맵입니다(밝을수록 강한 반응). "
                        "풀링은 크기를 절반으로 줄입니다. 맨 위: 클래스별 신경망의 확률.",
    "sec.saliency": "왜 그렇게 답했을까? 중요도 지도",
    "p.saliency": "통합 그래디언트(integrated gradients): 검은 이미지(잉크 없음)에서 숫자까지 "
                  "직선 경로를 {steps}단계로 나누어 답의 로짓(softmax 이전 점수)의 "
                  "그래디언트를 평균하고 숫자를 곱한 값입니다. 빨간 픽셀은 신경망을 그 답 "
                  "쪽으로 밀었고, 파란 픽셀은 반대로 밀었습니다. 이미지마다 가장 강한 "
                  "픽셀을 기준으로 색의 세기를 맞췄습니다. 기여도의 합은 검은 이미지에서 "
                  "숫자까지 로짓이 변한 양과 같아야 하며, 여기서는 오차가 {median}(중앙값), "
                  "{max}(가장 나쁜 이미지) 이내입니다. 시작 이미지가 검은색이므로 잉크가 "
                  "있는 픽셀만 기여도를 가질 수 있습니다. 빠진 획은 드러나지 않습니다.",
    "fig.saliency_mistakes": "가장 확신한 오답의 중요도 지도",
    "cap.saliency_mistakes": "테스트 세트에서 가장 확신한 오답을 틀린 답 기준으로 설명한 "
                             "그림입니다. 빨간 잉크가 신경망에게 틀린 클래스처럼 보인 "
                             "부분입니다.",
    "fig.saliency_examples": "클래스마다 맞힌 이미지 한 장의 중요도 지도",
    "cap.saliency_examples": "클래스마다 맞힌 테스트 이미지 한 장. 가운데: 통합 그래디언트. "
                             "아래: 그래디언트 x 입력(숫자 자체에서의 그래디언트에 숫자를 "
                             "곱한 값으로, 더 빠르지만 더 어지럽습니다).",
    "sec.calibration": "그 확신을 얼마나 믿을 수 있을까? 보정",
    "p.calibration": "잘 보정된 모델은 90%라고 말할 때 10번 중 9번 맞습니다. 기대 보정 "
                     "오차(ECE)는 확신도와 정확도의 차이를 같은 너비의 확신도 구간 15개에 "
                     "걸쳐 구간별 이미지 수로 가중 평균한 값입니다. 온도 스케일링은 로짓을 "
                     "하나의 수 T로 나눕니다. T는 따로 떼어 둔 이미지(테스트 세트는 절대 "
                     "아님)에서 확률의 가능도가 가장 커지도록 맞추며, 답은 바뀌지 않습니다.",
    "cal.fit_on": "T와 기준값을 맞춘 이미지",
    "cal.fit_validation": "이 실행의 검증 분할: 학습 이미지 {first}번부터 {last}번까지 "
                          "({count}장), 모델이 학습에 쓰지 않은 이미지",
    "cal.fit_training": "마지막 학습 이미지 {count}장 ({first}번부터 {last}번까지)",
    "cal.seen_warning": "이 실행은 검증 분할을 따로 두지 않았으므로, T와 기준값을 모델이 "
                        "학습 중에 본 이미지에서 맞췄습니다. 모델은 새 이미지보다 이런 "
                        "이미지를 더 확신하므로 두 값 모두 낙관적인 추정값으로 보아야 합니다. "
                        "기준값이 너무 관대할 수 있고, 스케일링한 확률이 새 숫자에 대해 "
                        "조금 지나치게 확신에 차 있을 수 있습니다. 정직한 값을 얻으려면 "
                        "--validation-split 0.1로 학습하세요.",
    "cal.temperature": "온도 T",
    "cal.t_sharpen": "{t} (1보다 작음: 원래 확률이 지나치게 조심스러워서 더 뚜렷하게 "
                     "만듭니다)",
    "cal.t_soften": "{t} (1보다 큼: 원래 확률이 지나치게 확신에 차 있어서 부드럽게 "
                    "만듭니다)",
    "cal.ece_before": "테스트 세트 ECE, 원래 softmax",
    "cal.ece_after": "테스트 세트 ECE, 온도 스케일링 후",
    "cal.not_sure": "“잘 모르겠음”으로 볼 최고 확률 기준",
    "cal.not_sure_value": "{raw} (원래 softmax), {calibrated} (온도 스케일링 후)",
    "cal.rule": "“잘 모르겠음” 기준값은 다음을 만족하는 가장 높은 최고 확률 t입니다: 따로 "
                "떼어 둔 이미지 중 최고 확률이 t보다 낮게 답한 이미지들의 정답률이 "
                "{target} 미만입니다. 이 값보다 낮은 답은 추측으로 보여 주어야 합니다.",
    "cal.flagged": "기준값보다 낮은 테스트 이미지",
    "cal.flagged_value": "{count}장(테스트 세트의 {share}): 그중 {flagged}가 정답, 나머지 "
                         "이미지는 {rest}가 정답",
    "cal.flagged_none": "없음",
    "cal.json": "이 값들은 이 페이지 옆의 calibration.json에도 있습니다.",
    "fig.reliability": "신뢰도 그림",
    "cap.reliability": "테스트 세트의 신뢰도 그림: 확신도 구간마다 정답 비율(막대)을 완벽한 "
                       "대각선과 비교합니다. 빗금 친 부분이 차이입니다. 아래: 구간마다 "
                       "들어간 이미지 수(로그 눈금). 왼쪽: 원래 softmax, 오른쪽: 온도 "
                       "스케일링 후.",
    "sec.robustness": "답이 얼마나 버틸까? 강건성",
    "p.robustness": "테스트 이미지 앞쪽 {count}장을 조금씩 바꾸었을 때의 정확도입니다(바꾸지 "
                    "않았을 때: {plain}). 회전과 이동은 숫자 전체를 움직이고, 굵기는 한 "
                    "단계에 한 픽셀씩 획을 굵게 하거나 가늘게 하며, 잡음은 무작위 회색을 "
                    "더합니다. FGSM(빠른 그래디언트 부호 방법)은 모든 픽셀을 손실이 가장 "
                    "크게 오르는 방향으로 엡실론(epsilon)만큼 움직입니다. 1차 근사로 가장 "
                    "나쁜 작은 변화입니다.",
    "rob.accuracy": "정확도",
    "fam.rotation": "회전 (도, + 시계 반대 방향)",
    "fam.shift_x": "가로 이동 (픽셀, + 오른쪽)",
    "fam.shift_y": "세로 이동 (픽셀, + 아래쪽)",
    "fam.thickness": "획 굵기 (단계, + 굵게)",
    "fam.noise": "가우스 잡음 (표준편차)",
    "fam.fgsm": "FGSM (엡실론, 픽셀 하나의 최대 변화)",
    "fig.robustness": "변형에 따른 정확도",
    "cap.robustness": "변형의 크기에 따른 정확도.",
    "fig.robustness_examples": "모든 변형을 가한 테스트 이미지 한 장",
    "cap.robustness_examples": "첫 번째 테스트 이미지에 모든 변형을 단계별로 가하고 신경망의 "
                               "답을 적었습니다(초록은 정답, 빨강은 오답).",
}

# Class names that are words (Fashion-MNIST's); digits and anything unlisted stay as they are.
CLASS_NAMES: dict[str, dict[str, str]] = {
    "en": {},
    "ko": {"T-shirt/top": "티셔츠/윗옷", "Trouser": "바지", "Pullover": "스웨터",
           "Dress": "원피스", "Coat": "코트", "Sandal": "샌들", "Shirt": "셔츠",
           "Sneaker": "운동화", "Bag": "가방", "Ankle boot": "앵클부츠"},
}
CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "ko": KO}
LANGUAGE_NAMES = {"en": "English", "ko": "한국어"}  # each in its own language, for the switch

Translator = Callable[..., str]


def translator(lang: str) -> Translator:
    """t(message_id, **fields) -> the message in `lang`, its fields filled in."""
    catalogue = CATALOGUES[lang]

    def t(key: str, **fields: object) -> str:
        return catalogue[key].format(**fields)

    return t


def class_name(lang: str, name: str) -> str:
    """A class's name in `lang` (digits are the same in every language)."""
    return CLASS_NAMES[lang].get(name, name)
