"""Data-parallel training: 2 ranks on gloo (this machine's two cores) against 1 process.

Each test starts real ranks through `mnist-cnn train --nproc 2` (torch's elastic agent),
the user's own torchrun, or two launchers meeting at a rendezvous endpoint, on real MNIST
kept small with --max-steps or a validation split.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mnist_cnn import distributed
from mnist_cnn.checkpoint import STATE, load_model, load_state, read_history

BN_ARCH = {"name": "bn-small", "layers": [
    {"type": "Conv2D", "filters": 8, "kernel_size": [3, 3], "activation": "relu"},
    {"type": "BatchNormalization"},
    {"type": "MaxPooling2D", "pool_size": [2, 2]},
    {"type": "Flatten"},
    {"type": "Dense", "units": 10, "activation": "softmax"}]}


@pytest.fixture
def env(data_dir) -> dict[str, str]:
    return {**os.environ, "MNIST_CNN_DATA": str(data_dir), "MNIST_CNN_DIST_TIMEOUT": "60"}


@pytest.mark.parametrize("n", [128, 127, 96, 5, 3, 1])
@pytest.mark.parametrize("ranks", [2, 3, 4])
def test_the_ranks_parts_average_to_the_whole_batch(n, ranks):
    """Each rank's weighted mean loss, averaged over the ranks as DDP averages gradients,
    is the whole batch's mean loss, for full, short and tiny last batches."""
    losses = torch.rand(n, dtype=torch.float64)
    idx = torch.randperm(n)
    parts = [distributed.shard(idx, r, ranks) for r in range(ranks)]
    average = sum(w * losses[part].mean() for part, w in parts) / ranks
    assert average.item() == pytest.approx(losses.mean().item(), rel=1e-12)
    if n >= ranks:  # every image in exactly one part
        assert sorted(torch.cat([p for p, _ in parts]).tolist()) == list(range(n))


def mnist_cnn(env, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_cnn", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def max_difference(run_a: Path, run_b: Path) -> float:
    a, b = load_file(run_a / "model.safetensors"), load_file(run_b / "model.safetensors")
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def one_rank(data_dir, tmp_path_factory) -> Path:
    """The lesson's recipe, 10 steps of batch 32, in one process."""
    run = tmp_path_factory.mktemp("one") / "run"
    env = {**os.environ, "MNIST_CNN_DATA": str(data_dir)}
    done = mnist_cnn(env, "train", "--max-steps", "10", "--out", str(run))
    assert done.returncode == 0, done.stderr
    return run


@pytest.mark.slow
def test_two_ranks_agree_with_one_and_the_run_is_ordinary(one_rank, env, tmp_path):
    run = tmp_path / "two"
    done = mnist_cnn(env, "train", "--nproc", "2", "--max-steps", "10", "--out", str(run))
    assert done.returncode == 0, done.stderr
    assert max_difference(one_rank, run) <= 1e-6  # 16 + 16 images a step vs 32
    assert done.stdout.count("Total params") == 1  # rank 0 alone prints
    model, meta = load_model(run)  # loads and evaluates like any run
    assert meta.timing.steps == 10 and meta.hyperparameters["batch_size"] == 32
    evaluated = mnist_cnn(env, "evaluate", str(run), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    accuracy = json.loads(evaluated.stdout)["accuracy"]
    assert accuracy == pytest.approx(meta.metrics["test_accuracy"], abs=1e-9)
    one_meta = load_model(one_rank)[1]
    assert accuracy == pytest.approx(one_meta.metrics["test_accuracy"], abs=2e-4)


@pytest.mark.slow
def test_users_own_torchrun(one_rank, env, tmp_path):
    run = tmp_path / "torchrun"
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
         "2", "-m", "mnist_cnn", "train", "--max-steps", "10", "--out", str(run)],
        env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert max_difference(one_rank, run) <= 1e-6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_machines_meeting_at_an_endpoint(one_rank, env, tmp_path):
    """Two launchers (`--nnodes 2 --nproc 1`), as two machines would run them."""
    endpoint = f"127.0.0.1:{_free_port()}"
    runs = [tmp_path / f"node{i}" for i in range(2)]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "mnist_cnn", "train", "--nproc", "1", "--nnodes", "2",
         "--rdzv-endpoint", endpoint, "--rdzv-id", "t1", "--max-steps", "10", "--out",
         str(run)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for run in runs]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    written = [run for run in runs if (run / "model.safetensors").exists()]
    assert len(written) == 1  # rank 0's machine holds the run
    assert max_difference(one_rank, written[0]) <= 1e-6


def _wait_for(predicate, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


@pytest.mark.slow
def test_ctrl_c_stops_every_rank_with_130_and_resume_finishes(env, tmp_path):
    run = tmp_path / "run"
    args = ["--nproc", "2", "--validation-split", "0.9", "--batch-size", "256",
            "--epochs", "3"]
    proc = subprocess.Popen([sys.executable, "-m", "mnist_cnn", "train", *args, "--out",
                             str(run)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for(lambda: (tmp_path / ".run.partial" / STATE).exists(), proc, 240)  # staging
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the terminal's process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Resume with" in err and "--nproc 2" in err
    state = load_state(run)
    assert state.epoch >= 1 and state.config.batch_size == 256
    if state.epoch < 3:
        resumed = mnist_cnn(env, "train", "--resume", str(run), "--nproc", "2")
        assert resumed.returncode == 0, resumed.stderr
    model, meta = load_model(run)
    assert [row["epoch"] for row in read_history(run)] == [1, 2, 3]
    assert meta.metrics["test_accuracy"] > 0.9


def _rank_pid(launcher: int, rank: int) -> int | None:
    for child in Path("/proc").iterdir():
        try:
            stat = (child / "stat").read_text().rsplit(")", 1)[1].split()
            if int(stat[1]) == launcher and f"RANK={rank}".encode() in (
                    child / "environ").read_bytes().split(b"\0"):
                return int(child.name)
        except (OSError, ValueError, IndexError):
            continue
    return None


@pytest.mark.slow
def test_a_killed_rank_ends_the_run_with_one_line(env, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "mnist_cnn", "train", "--nproc", "2",
                             "--out", str(tmp_path / "run")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: _rank_pid(proc.pid, 1) is not None, proc, 120)
    time.sleep(8)  # into training (or still reading data: either way the run must end)
    os.kill(_rank_pid(proc.pid, 1), signal.SIGKILL)
    start = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - start < 60
    assert proc.returncode == distributed.PEER_LOST_EXIT
    assert err.strip().splitlines() == [err.strip()], err
    assert "rank 1" in err and "SIGKILL" in err


@pytest.mark.slow
def test_refusals_are_one_line_before_any_rank_starts(env, tmp_path):
    done = mnist_cnn(env, "train", "--nproc", "2", "--batch-size", "33")
    assert done.returncode == 2 and "divisible by 2" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = mnist_cnn(env, "train", "--nproc", "2", "--nnodes", "2")
    assert done.returncode == 2 and "--rdzv-endpoint" in done.stderr
    done = mnist_cnn({**env, "WORLD_SIZE": "2", "RANK": "0"}, "train", "--nproc", "2")
    assert done.returncode == 2 and "torchrun" in done.stderr
    done = mnist_cnn(env, "train", "--nproc", "0", "--max-steps", "1")
    assert done.returncode == 2 and "--nproc must be" in done.stderr, done.stderr


def _bn_simulation(arch_file: Path, mnist, steps: int) -> dict[str, torch.Tensor]:
    """What 2-rank DDP computes with BatchNormalization, in one process: each half-batch
    normalised by its own statistics, the two halves' mean losses averaged, and the moving
    statistics those of the first half (rank 0's, which DDP broadcasts)."""
    import torch.nn.functional as F

    from mnist_cnn.config import TrainConfig
    from mnist_cnn.device import to_tensors
    from mnist_cnn.model import build_model, resolve_architecture
    from mnist_cnn.optimizers import OptimizerSpec
    from mnist_cnn.train import Training, schedule

    recipe = TrainConfig(max_steps=steps).resolved_recipe()
    x, y = to_tensors(*mnist[0], torch.device("cpu"), True)
    model = build_model(resolve_architecture(str(arch_file)), seed=0)
    model = model.to(memory_format=torch.channels_last).train()
    spec = OptimizerSpec.named("adam", recipe.lr)
    t = Training.start(model, spec, schedule(recipe, steps), 0)
    order = torch.randperm(len(x), generator=t.shuffle)
    for i in range(steps):
        halves = torch.tensor_split(order[i * 32:(i + 1) * 32], 2)
        first = F.cross_entropy(model(x[halves[0]]), y[halves[0]])
        kept = {k: v.clone() for k, v in model.named_buffers()}
        second = F.cross_entropy(model(x[halves[1]]), y[halves[1]])
        with torch.no_grad():  # rank 1's statistics never reach the saved model
            for name, buffer in model.named_buffers():
                buffer.copy_(kept[name])
        t.optimizer.zero_grad(set_to_none=True)
        ((first + second) / 2).backward()
        spec.step(t.optimizer, i + 1)
        t.scheduler.step()
    return model.state_dict()


@pytest.mark.slow
def test_batch_normalization_uses_each_ranks_own_batch(env, tmp_path, mnist):
    arch = tmp_path / "bn.json"
    arch.write_text(json.dumps(BN_ARCH))
    run = tmp_path / "bn"
    done = mnist_cnn(env, "train", "--nproc", "2", "--arch", str(arch), "--max-steps", "10",
                     "--out", str(run))
    assert done.returncode == 0, done.stderr
    got, expected = load_file(run / "model.safetensors"), _bn_simulation(arch, mnist, 10)
    assert max((got[k] - expected[k]).abs().max().item() for k in got) <= 1e-5


@pytest.mark.slow
def test_a_one_process_stop_inside_an_epoch_resumes_on_two_ranks(env, data_dir, tmp_path):
    """Stopped inside its only epoch in one process, finished on 2 ranks: the epoch's loss
    and accuracy count the steps before the stop once, as an uninterrupted run's do."""
    from mnist_cnn import checkpoint, data
    from mnist_cnn.config import TrainConfig
    from mnist_cnn.train import fit

    cfg = TrainConfig(epochs=1, max_steps=20, seed=0, device="cpu")
    train = data.load_data("mnist", data_dir)[0]
    whole = fit(cfg, train).history[0]

    def stop(state):
        checkpoint.save_state(tmp_path / "run", state)  # as a run killed after step 10
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(cfg, train, on_epoch=stop, checkpoint_steps=10)
    assert load_state(tmp_path / "run").progress["step"] == 10
    done = mnist_cnn(env, "train", "--resume", str(tmp_path / "run"), "--nproc", "2")
    assert done.returncode == 0, done.stderr
    resumed = read_history(tmp_path / "run")[0]
    assert resumed["loss"] == pytest.approx(whole["loss"], rel=1e-4)
    assert resumed["accuracy"] == pytest.approx(whole["accuracy"], abs=1 / 640)
