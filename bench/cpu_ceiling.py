"""How close our training step runs to the bare model, and how it compares with the
official tsimcne 0.3.12, side by side in one run.

    python bench/cpu_ceiling.py                                  # ours only
    python bench/cpu_ceiling.py --peer-python /tmp/peer/bin/python --peer-path /tmp/peer03

Three figures, all ResNet18 on digits upscaled to 32x32 RGB, batch 256 (the set-up of the
figures in the README):

- ceiling: the bare model's forward + backward (our loss on fixed, pre-made views; no
  augmentation, no optimiser) in the precision and layout ``mixed_precision='auto'`` picks;
- ours: ``TSimCNE.fit`` steps (augmentation, loss, clipping, SGD), from ``history_``;
- peer: stage-1 epochs of tsimcne 0.3.12's ``fit`` (``num_workers=2``), run in its own
  virtual environment (``--peer-python``, with the package at ``--peer-path``): a fit of
  1 + ``--peer-epochs`` epochs minus a fit of 1, so that its set-up does not count.

Install the peer into a throwaway environment, never as a dependency:
``pip install tsimcne==0.4.24`` (for lightning and the rest), then
``pip install --no-deps --target DIR tsimcne==0.3.12``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import cpu_name  # noqa: E402

from tsimcne_widgets import TSimCNE, load_digits  # noqa: E402
from tsimcne_widgets._device import autocast  # noqa: E402
from tsimcne_widgets.losses import cauchy_infonce  # noqa: E402


def digits32(n: int) -> np.ndarray:
    """``n`` digits as uint8 RGB 32x32 (nearest upscaling of the 8x8 originals)."""
    d = load_digits().images[:n]  # (n, 1, 8, 8)
    up = d.repeat_interleave(4, 2).repeat_interleave(4, 3).repeat(1, 3, 1, 1)
    return up.numpy()


def ours(args, X) -> tuple[float, str, int | None]:
    est = TSimCNE(backbone="resnet18", batch_size=args.batch_size,
                  total_epochs=(args.epochs, 0, 0), warmup_epochs=0, device="cpu",
                  mixed_precision=args.precision, n_threads=args.n_threads, random_state=0,
                  verbose=False)
    est.fit(X)
    timed = est.history_[1:] or est.history_  # the first epoch warms up
    seconds = sum(h["seconds"] for h in timed)
    steps = len(X) // args.batch_size
    return (2 * args.batch_size * steps * len(timed) / seconds,
            f"{est.precision_}/{est.memory_format_}", est.n_threads_)


def ceiling(args, setting: str, threads: int | None) -> float:
    """Forward + backward of the bare model on fixed views, in ``setting`` (precision and
    layout, e.g. 'bf16/channels_last')."""
    precision, layout = setting.split("/")
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    est = TSimCNE(backbone="resnet18", batch_size=args.batch_size, total_epochs=(1, 0, 0),
                  warmup_epochs=0, device="cpu", mixed_precision=precision == "bf16",
                  n_threads=1, random_state=0, verbose=False)
    est.fit(digits32(2 * args.batch_size))
    model = est.model_.train().to(memory_format=fmt)
    if threads:
        torch.set_num_threads(threads)
    views = torch.randn(2 * args.batch_size, 3, 32, 32).contiguous(memory_format=fmt)
    bf16 = precision == "bf16"

    def step():
        model.zero_grad(set_to_none=True)
        with autocast(torch.device("cpu"), bf16):
            z = model(views)
        cauchy_infonce(z).backward()

    for _ in range(2):
        step()
    times = []
    for _ in range(args.ceiling_steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return 2 * args.batch_size / float(np.median(times))


PEER = textwrap.dedent("""
    import json, sys, time
    import numpy as np, torch
    from PIL import Image
    from tsimcne.tsimcne import TSimCNE
    X = np.load(sys.argv[1])
    class DS(torch.utils.data.Dataset):
        def __len__(self): return len(X)
        def __getitem__(self, i): return Image.fromarray(X[i].transpose(1, 2, 0)), 0
    out = {}
    for epochs in (1, 1 + EPOCHS):
        # (0.3.12 drops trainer_kwargs: its update() returns None)
        est = TSimCNE(total_epochs=[epochs], warmup=[0], batch_size=BATCH, num_workers=2,
                      backbone="resnet18_simclr")
        t0 = time.perf_counter()
        est.fit(DS())
        out[epochs] = time.perf_counter() - t0
    print(json.dumps({"seconds": out, "threads": torch.get_num_threads()}))
""")


def peer(args, X) -> tuple[float, float]:
    """Views/s of the peer's extra epochs: a fit of 1 + E epochs minus a fit of 1, so that
    its set-up (Lightning, data loader workers) does not count."""
    path = Path("/tmp/peer_digits32.npy")
    np.save(path, X)
    code = PEER.replace("EPOCHS", str(args.peer_epochs)).replace("BATCH", str(args.batch_size))
    env = {"PYTHONPATH": args.peer_path, "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    # Lightning writes lightning_logs/ with checkpoints into its working folder
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([args.peer_python, "-c", code, str(path)], capture_output=True,
                             text=True, env=env, timeout=3600, cwd=cwd)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    sec = {int(k): v for k, v in rec["seconds"].items()}
    extra = sec[1 + args.peer_epochs] - sec[1]
    steps = len(X) // args.batch_size  # it drops the last partial batch too
    return 2 * args.batch_size * steps * args.peer_epochs / extra, extra


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1792, help="digits used (7 batches)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=2, help="ours: the first is not timed")
    p.add_argument("--precision", default="auto", help="'auto', True or False")
    p.add_argument("--n-threads", default="auto")
    p.add_argument("--ceiling-steps", type=int, default=5)
    p.add_argument("--peer-python", default=None)
    p.add_argument("--peer-path", default=None)
    p.add_argument("--peer-epochs", type=int, default=2, help="timed peer epochs")
    args = p.parse_args()
    args.precision = {"True": True, "False": False}.get(args.precision, args.precision)
    args.n_threads = args.n_threads if args.n_threads == "auto" else int(args.n_threads)
    X = digits32(args.images)
    print(f"{cpu_name()}; torch {torch.__version__}; {torch.get_num_threads()} threads; "
          f"ResNet18 32x32 RGB, batch {args.batch_size}, {len(X)} digits")
    vps, precision, threads = ours(args, X)
    print(f"ours (TSimCNE.fit steps, {precision}, {threads} threads): {vps:.1f} views/s",
          flush=True)
    top = ceiling(args, precision, threads)
    print(f"ceiling (bare forward+backward, {precision}): {top:.1f} views/s; "
          f"ours = {vps / top:.1%} of it", flush=True)
    if args.peer_python:
        pv, seconds = peer(args, X)
        print(f"tsimcne 0.3.12 (stage-1 epochs, num_workers=2; {args.peer_epochs} timed "
              f"epochs took {seconds:.1f} s): {pv:.1f} views/s; ours = {vps / pv:.2f}x")


if __name__ == "__main__":
    main()
