#!/usr/bin/env bash
# On a CUDA machine (python3 with torch, scikit-learn, pandas; the package from the source
# tree): what mixed_precision='auto' measures and picks, and the cost of snapshots in a
# background run (fit vs start without and with the default snapshots). About 2 minutes.
set -u
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi -L || true
echo "== precision chosen by measurement"
$PY - <<'PYEOF'
import numpy as np
from tsimcne_widgets import TSimCNE
rng = np.random.default_rng(0)
for backbone, shape, batch in [("resnet18", (32, 32, 3), 512), ("resnet18", (32, 32, 3), 1024),
                               ("fast", (28, 28), 512)]:
    X = rng.integers(0, 256, (2 * batch, *shape), dtype=np.uint8)
    est = TSimCNE(backbone=backbone, batch_size=batch, total_epochs=1, random_state=0).fit(X)
    t = est.precision_timings_
    ms = ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in t.items() if k != "views")
    print(f"{backbone} {shape} batch {batch}: precision_={est.precision_}, memory_format_="
          f"{est.memory_format_}; probe {t['views']} views/step: {ms}")
PYEOF
echo "== snapshot overhead: 50,000 32x32 images, ResNet18, batch 512, epochs (4,1,1)"
$PY bench/run_modes.py --data cifar-sized --epochs 4,1,1 --backbone resnet18 --batch-size 512
