"""`mnist-cnn bench`: the figures it reports are the runs it made."""

from __future__ import annotations

import json

from mnist_cnn.bench import BenchReport, RecipeFigures
from mnist_cnn.cli import main


def test_report_keeps_every_run_and_its_medians():
    figures = RecipeFigures("fast", 1, 128, "bf16", [3.0, 1.0, 2.0], [10.0, 30.0, 20.0],
                            [0.99, 0.98, 0.97])
    out = BenchReport(machine={}, recipes=[figures]).to_dict()["recipes"][0]
    assert out["train_seconds"] == [3.0, 1.0, 2.0] and out["train_seconds_median"] == 2.0
    assert out["images_per_second_median"] == 20.0
    assert abs(out["test_accuracy_mean"] - 0.98) < 1e-12


def test_bench_cli_json_on_a_short_run(data_dir, capsys):
    assert main(["bench", "--recipes", "fast", "--runs", "1", "--epochs", "1", "--no-peer",
                 "--json", "--data-dir", str(data_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    fast = report["recipes"][0]
    assert fast["recipe"] == "fast" and len(fast["train_seconds"]) == 1
    assert fast["test_accuracy"][0] > 0.98
    assert report["eval_seconds"]["fp32"] > 0 and report["latency_ms"]["p50"] > 0


def test_bench_rejects_unknown_recipes_before_any_work(capsys):
    assert main(["bench", "--recipes", "fast,turbo"]) == 2
    assert "unknown recipe 'turbo'" in capsys.readouterr().err
