#!/usr/bin/env bash
# CPU vs GPU figures for the README, run from the repository root on a machine with a
# CUDA GPU and a python3 that already has torch, torchvision, scikit-learn and pandas
# (nothing is installed; the package is used from the source tree).
#
#   bash bench/device_figures.sh            # everything, about 5 minutes on an H100/H200
#   OUT=/tmp/figs bash bench/device_figures.sh
#
# 1. the core unit tests on CUDA (device="auto" picks the GPU; a few tests that assert a
#    CPU-only machine are expected to fail there and are listed);
# 2. training throughput, ResNet18 at 32x32 (CIFAR-sized), batch 256 and 1024;
# 3. the digits demo (`tsimcne-widgets demo`), the same schedule as on the CPU;
# 4. the same demo through a background run (est.start()) with snapshots.
set -u
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-/tmp/tsimcne-device}
mkdir -p "$OUT"

nvidia-smi -L || true
$PY -c "import torch, os; print('torch', torch.__version__, '| cuda:', torch.cuda.is_available(), \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '', '| cpus:', os.cpu_count())"

echo "== 1. core tests on the GPU"
timeout 240 $PY -m pytest -q -p no:cacheprovider -o addopts="" \
  tests/test_augment.py tests/test_losses.py tests/test_schedule.py tests/test_estimator.py \
  tests/test_run.py 2>&1 | tail -25

echo "== 2. throughput (ResNet18, 32x32)"
for bs in 256 1024; do
  $PY bench/train_throughput.py --batch-size $bs --steps 30 --warmup 5
done

echo "== 3. digits demo, default schedule"
/usr/bin/time -f "demo wall %e s" $PY -m tsimcne_widgets demo --out "$OUT/demo.csv"

echo "== 4. the demo schedule as a background run with snapshots"
$PY - <<'EOF'
import time
from tsimcne_widgets import Augmentations, TSimCNE, load_digits, metrics
from tsimcne_widgets.cli import DEMO_AUGMENTATIONS, DEMO_BATCH_SIZE, DEMO_EPOCHS, DEMO_LR
data = load_digits()
est = TSimCNE(total_epochs=DEMO_EPOCHS, batch_size=DEMO_BATCH_SIZE, lr=DEMO_LR,
              augmentations=Augmentations(**DEMO_AUGMENTATIONS), random_state=0)
t0 = time.perf_counter()
run = est.start(data)
run.wait()
dt = time.perf_counter() - t0
Z = est.transform(data)
print(f"background run: {dt:.1f} s on {est.device_}, {len(run.snapshots)} snapshots kept, "
      f"kNN {metrics.knn_accuracy(Z, data.labels, k=15):.4f}")
EOF
