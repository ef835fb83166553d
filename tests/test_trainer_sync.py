"""The sync-free step: losses read back every ``sync_every`` steps, non-finite steps skipped
on the device by the fused optimiser."""

import pytest
import torch

from tsimcne_widgets import Augmentations, TSimCNE
from tsimcne_widgets.data import as_images
from tsimcne_widgets.trainer import NonFiniteLossError

FAST = {"backbone": "small", "total_epochs": (2, 1, 1), "batch_size": 32,
        "augmentations": Augmentations(hflip=0), "random_state": 0,
        "device": "cpu", "n_threads": 1, "mixed_precision": False}


def trainer_for(X, sync_every):
    est = TSimCNE(**FAST)
    data = as_images(X)
    est._initialize(data)
    tr = est._trainer
    tr.set_images(data.images)
    tr.sync_every = sync_every
    return est, tr


def test_reading_losses_every_4_steps_trains_the_same_model(small_digits):
    X = small_digits[0][:120]  # 3 steps per epoch
    runs = []
    for k in (1, 4):
        est, tr = trainer_for(X, k)
        infos = []
        while not tr.done:
            infos.append(tr.step())
        runs.append((est, infos))
    (est1, infos1), (est4, infos4) = runs
    for a, b in zip(est1.model_.state_dict().values(), est4.model_.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert all(i.synced for i in infos1)
    # Epoch ends always sync, so the epoch losses are exact; within an epoch of 3 steps
    # with sync_every=4 only the epoch's last step reads back, the mean of all three.
    assert [i.synced for i in infos4] == [False, False, True] * 4
    assert [i.epoch_loss for i in infos4] == [i.epoch_loss for i in infos1]
    for j in range(2, 12, 3):
        mean = sum(i.loss for i in infos1[j - 2:j + 1]) / 3
        assert infos4[j].loss == pytest.approx(mean, rel=1e-6)


def test_epoch_mean_loss_counts_the_steps_read_back(small_digits):
    X = small_digits[0][:120]  # 3 steps per epoch
    _, tr = trainer_for(X, 2)
    assert tr.epoch_mean_loss != tr.epoch_mean_loss  # NaN before any step
    first = tr.step()
    assert not first.synced and tr.epoch_mean_loss != tr.epoch_mean_loss
    second = tr.step()  # reads back both
    assert tr.epoch_mean_loss == pytest.approx(second.loss)
    last = tr.step()  # the epoch's end: the whole epoch's, until the next step
    assert last.epoch_end and tr.epoch_mean_loss == pytest.approx(last.epoch_loss)


def test_a_non_finite_step_in_a_window_is_skipped_and_named_at_the_sync(digits):
    X = digits.images[:320].numpy()  # 10 steps per epoch
    est, tr = trainer_for(X, 4)
    for _ in range(4):
        tr.step()
    before = {k: v.clone() for k, v in est.model_.state_dict().items()}
    real = tr.loss_fn
    calls = []

    def nan_from_the_second(z):
        calls.append(1)
        return real(z) * (float("nan") if len(calls) >= 2 else 1.0)

    tr.loss_fn = nan_from_the_second
    info = tr.step()  # finite, not read back yet
    assert not info.synced
    changed = {k: v.clone() for k, v in est.model_.state_dict().items()}
    assert any(not torch.equal(before[k], changed[k]) for k in before)
    tr.step()  # non-finite: no error until the sync
    tr.step()
    with pytest.raises(NonFiniteLossError,
                       match=r"stage 1 \(pretrain\), epoch 1, step 6 \(3 of the last 4"):
        tr.step()
    # The three non-finite steps changed nothing, BatchNorm statistics included.
    after = est.model_.state_dict()
    assert all(torch.equal(changed[k], after[k]) for k in changed)


def test_a_checkpoint_of_an_unfused_optimiser_resumes(tmp_path, small_digits):
    X = small_digits[0][:120]
    est, tr = trainer_for(X, 1)
    for _ in range(2):
        est._record(tr.step())
    est.save(tmp_path / "ckpt.pt")
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    groups = state["trainer"]["optimizer"]["param_groups"]
    assert groups[0]["fused"] is True
    for g in groups:  # as written by a foreach optimiser (another device, older versions)
        g["fused"], g["foreach"] = None, True
    torch.save(state, tmp_path / "old.pt")
    resumed = TSimCNE.load(tmp_path / "old.pt")
    resumed.fit(X)
    assert resumed.embedding_.shape == (120, 2)
