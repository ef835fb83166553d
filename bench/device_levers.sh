#!/usr/bin/env bash
# The GPU levers of the training step, in one prepared run (about 8 minutes on an H200), on
# a CUDA machine whose python3 has torch, torchvision, scikit-learn and pandas (the package
# is used from the source tree; nothing is installed):
#
#   bash bench/device_levers.sh [SECTION...]     # sections: step compile snapshots torchrun
#   bash bench/device_levers.sh slice             # the paper's schedule, a 5-minute slice
#
# step       today's views/s of `fit` (sync-free loop, fused SGD, bf16 where it wins),
#            ResNet18 32x32 at batch 512 and 1024, against 46,093 / 57,002 views/s measured
#            on 2026-11-28 before those changes (goal: >= 2x at the same batch size);
# compile    eager vs torch_compile=True, with the compile time;
# snapshots  fit vs a background run with the default snapshots (goal: < 5% overhead);
# torchrun   `torchrun --nproc-per-node 1 -m tsimcne_widgets train` on NCCL;
# slice      60,000 images of 32x32, (1000, 50, 450) epochs, batch 512: 5 minutes of stage 1
#            timed, the whole schedule estimated from it (goal: <= 30 minutes).
set -u
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-/tmp/tsimcne-levers}
mkdir -p "$OUT"
SECTIONS=${*:-step compile snapshots torchrun}
nvidia-smi -L || true
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

for section in $SECTIONS; do
case $section in
step)
  echo "== step: views/s of fit, ResNet18 32x32"
  for bs in 512 1024; do
    $PY bench/train_throughput.py --batch-size $bs --steps 40 --warmup 5
  done ;;
compile)
  echo "== compile: eager vs torch_compile"
  $PY bench/compile_step.py --device cuda --precision auto --cases resnet18 \
    --batch-size 512 --images 32768 --epochs 4 ;;
snapshots)
  echo "== snapshots: fit vs background run"
  $PY bench/run_modes.py --data cifar-sized --epochs 4,1,1 --backbone resnet18 --batch-size 512 ;;
torchrun)
  echo "== torchrun, 1 process, NCCL"
  $PY - <<'PYEOF'
import numpy as np
rng = np.random.default_rng(0)
np.savez("/tmp/levers_data.npz", images=rng.integers(0, 256, (8192, 32, 32, 3), np.uint8),
         labels=rng.integers(0, 10, 8192))
PYEOF
  timeout 300 $PY -m torch.distributed.run --nproc-per-node 1 -m tsimcne_widgets train \
    /tmp/levers_data.npz --out "$OUT/torchrun" --epochs 2,1,1 --batch-size 512 \
    --distributed yes 2>&1 | tail -15
  ls -la "$OUT/torchrun" ;;
slice)
  echo "== slice: 5 minutes of the paper's schedule"
  $PY - <<'PYEOF'
import time
import numpy as np
from tsimcne_widgets import TSimCNE
X = np.random.default_rng(0).integers(0, 256, (60000, 32, 32, 3), np.uint8)
est = TSimCNE(total_epochs=(1000, 50, 450), batch_size=512, random_state=0, verbose=False)
run = est.start(X, snapshot_every=0.5)
time.sleep(300)
p = run.progress
run.stop(); run.wait(120)
rate = p.steps_done / p.elapsed
print(f"{p.steps_done} steps in {p.elapsed:.0f} s ({p.views_per_s:.0f} views/s, "
      f"{p.precision}); the whole schedule ({p.total_steps} steps) at this rate: "
      f"{p.total_steps / rate / 60:.1f} min")
PYEOF
  ;;
esac
done
