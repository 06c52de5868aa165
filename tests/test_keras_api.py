"""The Keras-style API: the lesson's program on mnist-cnn's engine, and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mnist_cnn import keras
from mnist_cnn.cli import main
from mnist_cnn.errors import ArchitectureError, UsageError
from mnist_cnn.keras import layers, models

GOLDEN = Path(__file__).parent / "golden"


def _lesson_base() -> models.Sequential:
    model = models.Sequential()
    model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    model.add(layers.MaxPooling2D((2, 2)))
    model.add(layers.Conv2D(64, (3, 3), activation="relu"))
    return model


def _lesson() -> models.Sequential:
    model = _lesson_base()
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def small(mnist):
    (x, y), (xt, yt) = mnist
    return (x[:3000].reshape(-1, 28, 28, 1) / 255.0, y[:3000]), (xt[:1000] / 255.0, yt[:1000])


def test_summary_before_and_after_the_head_is_the_lessons(capsys):
    model = _lesson_base()
    model.summary()
    assert capsys.readouterr().out == (GOLDEN / "summary_conv_only.txt").read_text()
    model.add(layers.Flatten())
    model.add(layers.Dense(64, activation="relu"))
    model.add(layers.Dense(10, activation="softmax"))
    model.summary()
    assert capsys.readouterr().out == (GOLDEN / "summary_seed.txt").read_text()
    assert [layer.name for layer in model.layers][-2:] == ["dense", "dense_1"]
    assert model.count_params() == 93322 and model.layers[2].output_shape == (None, 11, 11, 64)


def test_the_list_form_with_a_third_pool(capsys):
    model = keras.models.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, (3, 3), activation="relu"), keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(64, (3, 3), activation="relu"), keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(64, (3, 3), activation="relu"), keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(), keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10, activation="softmax")])
    model.summary()
    assert capsys.readouterr().out == (GOLDEN / "summary_seed_pool3.txt").read_text()


def test_fit_evaluate_predict_as_keras_returns_and_prints(small, capsys):
    (x, y), (xt, yt) = small
    keras.utils.set_random_seed(0)
    model = _lesson()
    history = model.fit(x, y, epochs=2, batch_size=64, validation_split=0.1, verbose=2)
    assert list(history.history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(history.history["loss"]) == 2 and history.epoch == [0, 1]
    assert history.history["accuracy"][1] > 0.8
    out = capsys.readouterr().out
    assert "Epoch 1/2\n" in out and "Epoch 2/2\n" in out and "43/43 - " in out
    loss, accuracy = model.evaluate(xt, yt, verbose=2)
    line = capsys.readouterr().out.strip()
    assert line.startswith("32/32 - ") and f"loss: {loss:.4f} - accuracy: {accuracy:.4f}" in line
    assert accuracy > 0.85
    probs = model.predict(xt[:5], verbose=0)
    assert probs.shape == (5, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.mean(model.predict(xt, verbose=0).argmax(1) == yt) == pytest.approx(accuracy)


def test_same_seed_same_training(small):
    (x, y), _ = small
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        model = _lesson()
        model.fit(x[:512], y[:512], epochs=1, verbose=0)
        weights.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights, strict=True))


def test_a_users_variant_sgd_one_hot_and_more_layers(small):
    (x, y), (xt, yt) = small
    model = keras.Sequential([
        keras.layers.Conv2D(16, 5, strides=2, padding="same", activation="relu",
                            input_shape=(28, 28, 1)),
        keras.layers.BatchNormalization(),
        keras.layers.AveragePooling2D(2, padding="same"),
        keras.layers.Dropout(0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="tanh"),
        keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, keras.utils.to_categorical(y, 10), epochs=2, verbose=0)
    loss, accuracy = model.evaluate(xt, keras.utils.to_categorical(yt, 10), verbose=0)
    assert accuracy > 0.85 and np.isfinite(loss)


def test_save_is_a_run_every_command_reads(small, tmp_path, data_dir, capsys):
    (x, y), (xt, yt) = small
    model = _lesson()
    model.fit(x[:256], y[:256], epochs=1, verbose=0)
    model.save(tmp_path / "run")
    loaded = models.load_model(tmp_path / "run")
    np.testing.assert_array_equal(loaded.predict(xt, verbose=0), model.predict(xt, verbose=0))
    assert main(["evaluate", str(tmp_path / "run"), "--data-dir", str(data_dir)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_load_model_reads_a_keras_file(small):
    _, (xt, yt) = small
    fixtures = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "keras"
    model = models.load_model(fixtures / "fixture_seed.keras")
    expected = np.load(fixtures / "fixture_seed_probs_test1000.npy")
    np.testing.assert_allclose(model.predict(xt, verbose=0), expected, atol=1e-5)


@pytest.mark.parametrize("build, message", [
    (lambda: models.Sequential([layers.Dense(10, input_shape=(28, 28, 1))]),
     "needs a flat input"),
    (lambda: models.Sequential([layers.Conv2D(8, 30, input_shape=(28, 28, 1))]),
     "kernel 30x30 is larger than its input 28x28"),
    (lambda: layers.Conv2D(8, 3, activation="swish"), "unknown activation 'swish'"),
    (lambda: layers.Dense(-3), "units must be an integer"),
    (lambda: layers.Conv2D(8, 3, dilation_rate=2), "dilation_rate is not supported"),
    (lambda: layers.Conv2D(8, 3, input_shape=(32, 32, 3)), "mnist-cnn reads 28x28 images"),
    (lambda: models.Sequential([layers.Flatten(input_shape=(28, 28))] + [layers.Dropout(0.1)
                                                                         for _ in range(64)]),
     "65 layers; at most 64"),
])
def test_a_bad_stack_is_a_python_exception_naming_the_reason(build, message):
    with pytest.raises(ArchitectureError, match=message):
        build()
    with pytest.raises(ValueError):  # as Keras raises
        build()


@pytest.mark.parametrize("kwargs, message", [
    ({"loss": "mse"}, "loss 'mse'"),
    ({"loss": "sparse_categorical_crossentropy", "metrics": ["auc"]}, "metrics"),
    ({"optimizer": "adagrad", "loss": "sparse_categorical_crossentropy"}, "adagrad"),
    ({"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
     "use from_logits=False"),
])
def test_compile_errors_are_clear(kwargs, message):
    model = _lesson_base()
    model.add(layers.Flatten())
    model.add(layers.Dense(10, activation="softmax"))
    with pytest.raises((UsageError, ArchitectureError), match=message):
        model.compile(**kwargs)


def test_fit_before_compile_and_bad_data_are_clear(small):
    (x, y), _ = small
    model = _lesson_base()
    model.add(layers.Flatten())
    model.add(layers.Dense(10, activation="softmax"))
    with pytest.raises(UsageError, match="compile the model first"):
        model.fit(x, y)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(UsageError, match="shape"):
        model.fit(x[:, :20], y)
    with pytest.raises(UsageError, match="class indices"):
        model.fit(x[:10], y[:9])
