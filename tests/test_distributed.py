"""Training on several processes (torch.distributed, Gloo on CPU): the gathered loss and
its gradients equal one process's, a 2-process run writes one checkpoint that loads and
resumes in one process, and the ``train`` command."""

import inspect
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tsimcne_widgets.distributed as D
from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets.cli import main
from tsimcne_widgets.data import as_images
from tsimcne_widgets.losses import get_loss
from tsimcne_widgets.models import TSimCNEModel

ROOT = Path(__file__).resolve().parent.parent
# Views equal to the images: a step then does not depend on the augmentations' random
# streams, which differ between one process and several.
IDENTITY = {"crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0), "hflip": 0.0,
            "brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0,
            "jitter_p": 0.0, "grayscale_p": 0.0}


def tiny_backbone():
    # No BatchNorm: its statistics are per process (over each one's share of the batch),
    # so a model with BN would not match one process on the global batch exactly.
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU())


def tiny_model():
    return TSimCNEModel(tiny_backbone(), 16, 2, 1)


def images(n=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 8, 8), dtype=np.uint8)


# The workers get the same definitions.
COMMON = "\n".join([
    "import numpy as np, torch", "from tsimcne_widgets.models import TSimCNEModel",
    f"IDENTITY = {IDENTITY!r}",
    *(inspect.getsource(f) for f in (tiny_backbone, tiny_model, images))])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path, body: str, nprocs: int = 2, timeout: float = 120) -> None:
    """Run ``body`` in ``nprocs`` processes set up as torchrun sets them up; ``out`` is
    ``tmp_path`` there."""
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        from pathlib import Path
        rank = int(os.environ["RANK"])
        if hasattr(os, "sched_setaffinity"):  # one core each: they share a few cores
            cores = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, {cores[rank % len(cores)]})
        out = Path(sys.argv[1])
    """) + COMMON + "\n" + textwrap.dedent(body) + textwrap.dedent("""
        # Leave without the interpreter's finalisation: in about 1 of 15 launches on 2 CPU
        # cores a rank aborted there, after all its work ("terminate called without an
        # active exception", from a C++ thread; destroying the process group at exit did
        # not prevent it). The outputs above are written and flushed.
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(0)
    """))
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
               WORLD_SIZE=str(nprocs), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path)],
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in range(nprocs)]
    results = []
    try:
        for p in procs:
            results.append(p.communicate(timeout=timeout))
    finally:
        for p in procs:
            p.kill()
    for r, (p, (_, err)) in enumerate(zip(procs, results, strict=True)):
        assert p.returncode == 0, f"rank {r} failed:\n{err[-4000:]}"


GRADIENTS = """
import json
import tsimcne_widgets.distributed as D
from tsimcne_widgets import TSimCNE, Augmentations
from tsimcne_widgets.data import as_images
from tsimcne_widgets.losses import get_loss

dist = D.context(True, torch.device("cpu"))
r, w, B = dist.rank, dist.world_size, 16
views = torch.rand(2 * B, 1, 8, 8, generator=torch.Generator().manual_seed(1))
b = B // w
mine = torch.cat([views[r * b:(r + 1) * b], views[B + r * b:B + (r + 1) * b]])
result = {}
for metric in ("euclidean", "cosine"):
    model = tiny_model()
    ddp = dist.wrap(model)  # kept until backward: its hooks average the gradients
    loss, value = dist.contrastive_loss(get_loss(metric), ddp(mine))
    loss.backward()
    result[metric] = {"loss": value,
                      "grads": {k: p.grad.tolist() for k, p in model.named_parameters()}}

# Two optimiser steps (one epoch) of the estimator's trainer on the global batch.
est = TSimCNE(tiny_backbone(), feature_dim=16, total_epochs=(1, 1, 1), batch_size=32,
              augmentations=Augmentations(**IDENTITY), mixed_precision=False,
              device="cpu", random_state=0, distributed=True)
data = as_images(images())
est._initialize(data)
tr = est._trainer
tr.set_images(data.images)
result["steps"] = [tr.step().loss for _ in range(2)]
result["state"] = {k: v.tolist() for k, v in est.model_.state_dict().items()}
result["world"] = [est.world_size_, est.rank_, tr.batch_size]
(out / f"grads{r}.json").write_text(json.dumps(result))
"""


@pytest.mark.process
def test_gathered_loss_and_gradients_equal_one_process_on_the_global_batch(two_ranks):
    ranks = [json.loads((two_ranks / f"grads{r}.json").read_text()) for r in range(2)]
    B = 16
    views = torch.rand(2 * B, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for metric in ("euclidean", "cosine"):
        model = tiny_model()
        loss = get_loss(metric)(model(views))
        loss.backward()
        for got in ranks:
            assert got[metric]["loss"] == pytest.approx(loss.item(), rel=1e-6)
            # DDP averaged the ranks' gradients: both hold the full gradient, to float32
            # rounding relative to the largest one (the last bias's is 0 in exact arithmetic:
            # the Cauchy loss does not change when all points move together).
            scale = max(float(p.grad.abs().max()) for p in model.parameters())
            for name, p in model.named_parameters():
                error = np.abs(np.asarray(got[metric]["grads"][name]) - p.grad.numpy()).max()
                assert error / scale < 1e-5, (metric, name, error, scale)

    # The trainer: the same steps as one process on the same global batches.
    est = TSimCNE(tiny_backbone(), feature_dim=16, total_epochs=(1, 1, 1), batch_size=32,
                  augmentations=Augmentations(**IDENTITY), mixed_precision=False, device="cpu",
                  random_state=0, distributed=False)
    data = as_images(images())
    est._initialize(data)
    tr = est._trainer
    tr.set_images(data.images)
    losses = [tr.step().loss for _ in range(2)]
    for got in ranks:
        assert got["world"][0] == 2 and got["world"][2] == 32
        assert got["steps"] == pytest.approx(losses, rel=1e-5)
        for k, v in est.model_.state_dict().items():
            np.testing.assert_allclose(got["state"][k], v.numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=k)
    assert [g["world"][1] for g in ranks] == [0, 1]


RUN = """
import json
from tsimcne_widgets import TSimCNE, Augmentations
from tsimcne_widgets.data import as_images

X = images()
kw = dict(backbone="fast", total_epochs=(2, 1, 1), batch_size=32, mixed_precision=False,
          device="cpu", random_state=0, augmentations=Augmentations(hflip=0),
          distributed=True)
try:
    TSimCNE(**{**kw, "batch_size": 31})._initialize(as_images(X))
except ValueError as exc:
    bad_batch = str(exc)
est = TSimCNE(**kw)
data = as_images(X)
est._initialize(data)
tr = est._trainer
tr.set_images(data.images)
for _ in range(3):  # 2 steps per epoch: stop in the middle of the second epoch
    est._record(tr.step())
est.save(out / f"mid{r}.pt")
run = est.start(X, snapshot_every=None, checkpoint_every=1, checkpoint_dir=out / f"ckpt{r}")
run.wait(120)
np.save(out / f"embedding{r}.npy", est.embedding_)

# Rank 0 alone pauses, resumes and stops (as control.json would tell it): all ranks follow.
import threading
est2 = TSimCNE(**{**kw, "total_epochs": (100, 1, 1)})
run2 = est2.start(X, snapshot_every=None)
paused = []
if r == 0:
    def control(p):
        if p.steps_done >= 4 and not paused:
            paused.append(p.steps_done)
            run2.pause()
            threading.Timer(1.0, run2.resume).start()
        elif p.steps_done >= 10:
            run2.stop()
    run2.on("epoch_end", control)
run2.wait(120)
(out / f"rank{r}.json").write_text(json.dumps({
    "bad_batch": bad_batch, "world": [est.world_size_, est.rank_],
    "history": len(est.history_), "state": run.state,
    "controlled": [run2.state, len(est2.history_)]}))
"""


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One launch of 2 processes for both tests: starting them costs more than the work."""
    out = tmp_path_factory.mktemp("two_ranks")
    _launch(out, GRADIENTS + RUN)
    return out


@pytest.mark.process
def test_two_process_run_writes_one_checkpoint_that_loads_and_resumes_alone(two_ranks):
    tmp_path = two_ranks
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [g["world"] for g in ranks] == [[2, 0], [2, 1]]
    assert all(g["state"] == "finished" and g["history"] == 4 for g in ranks)
    # Pause and stop on rank 0 reached rank 1: both stopped early, at the same step.
    assert ranks[0]["controlled"] == ranks[1]["controlled"]
    assert ranks[0]["controlled"][0] == "stopped" and ranks[0]["controlled"][1] < 100
    assert "batch_size=31 must be divisible by the number of processes (2)" in (
        ranks[0]["bad_batch"])
    # Only rank 0 wrote: one mid-run checkpoint, one checkpoint folder.
    assert (tmp_path / "mid0.pt").exists() and not (tmp_path / "mid1.pt").exists()
    assert os.listdir(tmp_path / "ckpt0") == ["checkpoint.pt"]
    assert not (tmp_path / "ckpt1").exists()
    # Every rank ends with the same model, hence the same embedding.
    emb = [np.load(tmp_path / f"embedding{r}.npy") for r in range(2)]
    np.testing.assert_array_equal(emb[0], emb[1])

    X = images()
    final = TSimCNE.load(tmp_path / "ckpt0" / "checkpoint.pt")
    assert final._trainer.done and len(final.history_) == 4
    assert final.get_params()["distributed"] == "auto"
    np.testing.assert_allclose(final.transform(X), emb[0], rtol=1e-5, atol=1e-5)

    # The mid-run checkpoint continues in one process: same global batch, same position.
    mid = TSimCNE.load(tmp_path / "mid0.pt")
    assert mid._trainer.steps_done == 3 and mid._trainer.steps_per_epoch == 2
    mid.start(X, snapshot_every=None).wait(60)
    assert mid.world_size_ == 1 and mid.rank_ == 0
    assert len(mid.history_) == 4 and np.isfinite(mid.embedding_).all()
    assert mid.embedding_.shape == (64, 2)


def test_distributed_parameter_is_validated(monkeypatch):
    X = images()
    with pytest.raises(ValueError, match="distributed must be 'auto', True or False"):
        TSimCNE(distributed="yes", device="cpu").fit(X)
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="distributed=True needs a torch.distributed"):
        TSimCNE(distributed=True, device="cpu").fit(X)
    # Without a process group 'auto' is a single process.
    est = TSimCNE(tiny_backbone(), feature_dim=16, total_epochs=1, batch_size=32,
                  device="cpu", mixed_precision=False, random_state=0)
    est.fit(X)
    assert (est.world_size_, est.rank_) == (1, 0) and est._trainer.dist is None


def test_partial_losses_add_up_to_the_full_loss():
    z = torch.randn(24, 3, generator=torch.Generator().manual_seed(0))
    for metric in ("euclidean", "cosine"):
        fn = get_loss(metric)
        halves = [torch.cat([torch.arange(0, 6), torch.arange(12, 18)]),
                  torch.cat([torch.arange(6, 12), torch.arange(18, 24)])]
        total = sum(float(fn(z, rows=rows)) for rows in halves)
        assert total == pytest.approx(float(fn(z)), rel=1e-6)


def test_cli_train_on_npy_and_npz_writes_checkpoint_csv_and_resumes(tmp_path, capsys):
    X = images()
    np.save(tmp_path / "x.npy", X)
    out = tmp_path / "run"
    args = ["--out", str(out), "--epochs", "1,1,1", "--batch-size", "32", "--device", "cpu",
            "--backbone", "fast", "--checkpoint-every", "1"]
    assert main(["train", str(tmp_path / "x.npy"), *args]) == 0
    text = capsys.readouterr().out
    assert "trained on 64 images" in text and "embedding written to" in text
    df = pd.read_csv(out / "embedding.csv")
    assert list(df.columns) == ["index", "x", "y", "label"] and len(df) == 64
    assert df["label"].isna().all() and df[["x", "y"]].notna().all().all()
    assert TSimCNE.load(out / "checkpoint.pt")._trainer.done
    assert (out / "snapshots" / "index.jsonl").exists()

    # --resume continues the checkpoint (here complete: nothing more to train).
    with pytest.warns(UserWarning, match="already complete"):
        assert main(["train", str(tmp_path / "x.npy"), *args, "--resume"]) == 0
    assert "resumed and trained on 64 images" in capsys.readouterr().out

    labels = np.repeat(np.arange(4), 16)
    np.savez(tmp_path / "x.npz", images=X, labels=labels)
    out2 = tmp_path / "run2"
    assert main(["train", str(tmp_path / "x.npz"), *args[2:], "--out", str(out2)]) == 0
    df = pd.read_csv(out2 / "embedding.csv")
    assert sorted(set(df["label"])) == [0, 1, 2, 3]


@pytest.mark.parametrize("argv, message", [
    (["nope.txt"], "DATA must be 'digits', 'fashion-mnist'"),
    (["{npz}"], "has no array 'images'"),
    (["{npy}", "--batch-size", "0"], "batch_size must be"),
    (["{npy}", "--distributed", "yes"], "distributed=True needs"),
])
def test_cli_train_bad_input_is_one_line_and_nonzero(tmp_path, capsys, monkeypatch, argv,
                                                     message):
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    np.save(tmp_path / "x.npy", images())
    np.savez(tmp_path / "x.npz", pictures=images())
    argv = [a.format(npy=tmp_path / "x.npy", npz=tmp_path / "x.npz") for a in argv]
    assert main(["train", *argv, "--out", str(tmp_path / "o"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tsimcne-widgets train: error: ") and message in err
    assert err.count("\n") == 1


def test_tiny_model_has_no_batchnorm():
    # The equality test's premise (see tiny_backbone).
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                   for m in TSimCNEModel(tiny_backbone(), 16, 2, 1).modules())


def test_exit_hook_stops_runs_before_it_destroys_the_group(monkeypatch):
    import tsimcne_widgets.run as run_module

    calls = []
    monkeypatch.setattr(run_module, "stop_all_runs", lambda: calls.append("stop runs"))
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "destroy_process_group",
                        lambda: calls.append("destroy group"))
    D._destroy_at_exit()
    assert calls == ["stop runs", "destroy group"]
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    calls.clear()
    D._destroy_at_exit()  # none left (destroyed already, or never started): nothing to do
    assert calls == ["stop runs"]
