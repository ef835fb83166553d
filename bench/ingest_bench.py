"""Benchmark of reading a folder of JPEGs with ``as_images`` (tsimcne_widgets/ingest.py).

Generates N JPEGs of WxH in K class folders once (reused when the folder already holds them),
then runs each measurement in a fresh child process and reports:
  - wall time of ``as_images(folder, resize=R, num_workers=w)`` for each w in --workers
    (0 = in this process; ``w:thread`` uses threads instead of forked processes),
  - peak RSS growth of that process during the call: VmHWM after the call minus VmRSS after
    the imports (the peak is reset through /proc/self/clear_refs before the call), next to
    the size of the output array; with worker processes, also their peak private memory
    (sampled every 0.5 s from /proc/PID/smaps_rollup: the pages a forked worker does not
    share with the parent), summed over the workers,
  - with --cache: the first call that writes the cache, then the second load (in a new
    process) from it,
  - with --corrupt: the warning and the number of images read after adding one corrupt
    JPEG to the first class folder (removed afterwards).

Run:  .venv/bin/python bench/ingest_bench.py --n 1500 --size 1200x900 --classes 3 --resize 32 \
          --workers 0 2 --corrupt
      .venv/bin/python bench/ingest_bench.py --n 20000 --size 500x375 --classes 10 \
          --resize 64 --workers 0 1 2 2:thread --cache
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# --- data ---------------------------------------------------------------------------------------


def _write_jpegs(args: tuple[str, int, int, int, int, int]) -> int:
    """Write JPEGs start..stop: smooth random colour fields plus grain, like photos in size."""
    import numpy as np
    from PIL import Image

    folder, start, stop, width, height, n_classes = args
    for i in range(start, stop):
        rng = np.random.default_rng(i)
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((width, height), Image.BICUBIC)
        grain = rng.normal(0, 6, (height, width, 3))
        arr = np.clip(np.asarray(img, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
        cls = Path(folder) / f"class{i % n_classes:02d}"
        Image.fromarray(arr).save(cls / f"img{i:06d}.jpg", quality=85)
    return stop - start


def make_folder(folder: Path, n: int, width: int, height: int, n_classes: int) -> float:
    """Create the JPEGs unless `folder` already holds exactly them; returns seconds spent."""
    stamp = folder / ".bench.json"
    params = {"n": n, "width": width, "height": height, "classes": n_classes}
    if stamp.exists() and json.loads(stamp.read_text()) == params:
        return 0.0
    if folder.exists():
        shutil.rmtree(folder)
    for k in range(n_classes):
        (folder / f"class{k:02d}").mkdir(parents=True)
    t0 = time.perf_counter()
    step = 250
    jobs = [(str(folder), s, min(s + step, n), width, height, n_classes)
            for s in range(0, n, step)]
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        done = sum(pool.map(_write_jpegs, jobs))
    assert done == n
    stamp.write_text(json.dumps(params))
    return time.perf_counter() - t0


# --- one measurement (child process) ------------------------------------------------------------


def _status(key: str) -> float:
    """A /proc/self/status field in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


class _WorkerMemory:
    """Samples, every 0.5 s, the private memory (smaps_rollup Private_Clean + Private_Dirty:
    what a forked worker does not share with this process) of each child process."""

    def __init__(self) -> None:
        import threading

        self.peak: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(0.5):
            try:
                kids = Path(f"/proc/{me}/task/{me}/children").read_text().split()
            except OSError:
                return
            for pid in map(int, kids):
                try:
                    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
                except OSError:
                    continue
                kb = sum(int(ln.split()[1]) for ln in text.splitlines()
                         if ln.startswith(("Private_Clean:", "Private_Dirty:")))
                self.peak[pid] = max(self.peak.get(pid, 0.0), kb / 1024)

    def stop(self) -> tuple[float, float]:
        """Sum over the workers of their peak private memory, and the largest, in MB."""
        self._stop.set()
        self._thread.join()
        return sum(self.peak.values()), max(self.peak.values(), default=0.0)


def child(spec: dict) -> dict:
    import warnings

    import numpy as np
    import torch  # noqa: F401

    from tsimcne_widgets import ingest
    from tsimcne_widgets.data import as_images

    # Warm up what the call uses, so that lazy imports do not count as its memory.
    as_images([np.zeros((9, 9, 3), np.uint8)] * 2, resize=4)
    workers = spec["workers"]
    if isinstance(workers, str) and workers.endswith(":thread"):
        ingest._can_fork = lambda: False  # workers as threads
        workers = int(workers.split(":")[0])
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
        reset = True
    except OSError:
        reset = False
    base = _status("VmRSS")
    sampler = _WorkerMemory()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = as_images(spec["folder"], resize=spec["resize"], num_workers=workers,
                         cache=spec.get("cache"), progress=False)
    wall = time.perf_counter() - t0
    peak = _status("VmHWM")
    workers_sum, workers_max = sampler.stop()
    return {
        "wall_s": wall,
        "rss_growth_mb": peak - base,
        "hwm_reset": reset,
        "workers_private_mb": workers_sum,
        "worker_private_max_mb": workers_max,
        "output_mb": data.images.numel() / 2**20,
        "shape": list(data.images.shape),
        "n_skipped": len(data.skipped),
        "warnings": [str(w.message) for w in caught],
    }


def run_child(spec: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                         capture_output=True, text=True, cwd=ROOT, timeout=3600)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- report -------------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in text.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def line(label: str, r: dict) -> str:
    goal = 2 * r["output_mb"] + 200
    text = (f"  {label:<26} {r['wall_s']:8.2f} s   RSS growth {r['rss_growth_mb']:8.1f} MB "
            f"(output {r['output_mb']:.1f} MB; goal < {goal:.0f} MB"
            f"{'' if r['rss_growth_mb'] < goal else ' MISSED'})")
    if r["workers_private_mb"]:
        text += (f"; workers' private memory {r['workers_private_mb']:.0f} MB "
                 f"(largest {r['worker_private_max_mb']:.0f} MB)")
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--dir", type=Path, help="folder of the JPEGs (default: under the temp dir)")
    p.add_argument("--n", type=int, default=1500)
    p.add_argument("--size", default="1200x900", help="WIDTHxHEIGHT of the JPEGs")
    p.add_argument("--classes", type=int, default=3)
    p.add_argument("--resize", type=int, default=32)
    p.add_argument("--workers", nargs="+", default=["0", "1", "2"],
                   help="num_workers values; N:thread for N threads")
    p.add_argument("--cache", action="store_true", help="time writing and loading a cache")
    p.add_argument("--corrupt", action="store_true", help="add one corrupt JPEG and read")
    p.add_argument("--out", type=Path, help="also append the report to this file")
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    width, height = (int(v) for v in args.size.lower().split("x"))
    folder = args.dir or Path(tempfile.gettempdir()) / (
        f"tsw-ingest-{args.n}-{width}x{height}-{args.classes}")
    made = make_folder(folder, args.n, width, height, args.classes)
    # Read every file once, so that every measurement finds them in the page cache.
    size_mb = sum(len(f.read_bytes()) for f in sorted(folder.rglob("*.jpg"))) / 2**20
    lines = [
        f"== as_images(folder, resize={args.resize}): {args.n} JPEGs of {width}x{height} "
        f"in {args.classes} class folders ({size_mb:.0f} MB on disk, in the page cache) ==",
        f"CPU: {cpu_name()}, {len(os.sched_getaffinity(0))} usable cores (load average "
        f"{os.getloadavg()[0]:.1f} at the start: shared with other jobs); "
        f"Python {platform.python_version()}"
        + (f"; generated the JPEGs in {made:.0f} s" if made else "; JPEGs reused"),
    ]
    print("\n".join(lines), flush=True)

    def report(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    spec = {"folder": str(folder), "resize": args.resize}
    for w in args.workers:
        workers = w if ":" in w else int(w)
        r = run_child({**spec, "workers": workers})
        report(line(f"num_workers={w}", r))
        if r["n_skipped"] or r["shape"][0] != args.n:
            report(f"    read {r['shape'][0]} images, skipped {r['n_skipped']}")

    if args.cache:
        cache = Path(tempfile.mkdtemp(prefix="tsw-ingest-cache-"))
        try:
            w = max(int(v.split(":")[0]) for v in args.workers)
            first = run_child({**spec, "workers": w, "cache": str(cache)})
            report(line(f"cache: first (writes) w={w}", first))
            second = run_child({**spec, "workers": w, "cache": str(cache)})
            report(line("cache: second load", second))
            disk = sum(f.stat().st_size for f in cache.iterdir()) / 2**20
            report(f"    cache folder: {disk:.1f} MB")
        finally:
            shutil.rmtree(cache)

    if args.corrupt:
        bad = folder / "class00" / "zz_corrupt.jpg"
        bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" * 10)
        try:
            w = max(int(v.split(":")[0]) for v in args.workers)
            r = run_child({**spec, "workers": w})
        finally:
            bad.unlink()
        report(line(f"+1 corrupt file, w={w}", r))
        report(f"    read {r['shape'][0]} images, skipped {r['n_skipped']}; warning:")
        for text in r["warnings"]:
            report("    | " + text.replace("\n", "\n    | "))

    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as f:
            f.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
