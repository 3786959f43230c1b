"""``snnc eval`` throughput against the number of workers, in one run (issue: data sets beyond
one machine). Prints a table and writes benchmarks/results/eval_workers.json.

    .venv/bin/python benchmarks/eval_workers.py [--samples N] [--engines lava-fixed,reference]

The model is the digits demo's shape (Conv 1->16 3x3 -> Pool 2 -> Dense 256->10, CUBA, T = 32)
with seeded random weights (throughput does not depend on training); the data are Bernoulli
spikes. For every engine: samples/s with 1 and with 2 local workers (and a local Ray cluster
with 2 CPUs, when Ray is installed), the speed-up, and whether the predictions and per-layer
spike totals are identical to the 1-worker run. Ratios within one run are the result (shared
machines are noisy).
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def build(path, T=32, seed=0):
    import torch  # lazy: heavy
    from lava.lib.dl import slayer  # lazy: heavy
    import snnc
    neuron = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03, tau_grad=0.03,
                  scale_grad=3, requires_grad=False)
    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([
                slayer.block.cuba.Conv(neuron, 1, 16, 3, padding=1, weight_scale=4),
                slayer.block.cuba.Pool(neuron, 2, delay_shift=False),
                slayer.block.cuba.Flatten(),
                slayer.block.cuba.Dense(neuron, 16 * 4 * 4, 10, weight_scale=4)])

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    x = (torch.rand(2, 1, 8, 8, T) < 0.3).float()
    snnc.export(Net().eval(), x, path + ".onnx")
    snnc.compile(path + ".onnx", path)
    return path


# samples per engine: each 1-worker run takes ~10 s or more, so that the fixed cost of a worker
# (a Lava child, its build and compile: ~1 s) is not what the ratio measures
SAMPLES = {"lava-fixed": 192, "lava-float": 192, "lava-fused-fixed": 4096, "lava-fused-float": 4096}
DEFAULT_SAMPLES = 2048


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--samples", type=int, default=None,
                   help="samples per engine (default: SAMPLES, long enough that a worker's start-up "
                        "does not decide the ratio)")
    p.add_argument("--engines", default="lava-fixed,lava-fused-fixed,reference")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "eval_workers.json"))
    a = p.parse_args(argv)
    from snnc.compiler.printing import table
    from snnc.evaluate import evaluate
    try:
        import ray  # noqa: F401  (lazy: optional)
        have_ray = True
    except ImportError:
        have_ray = False
    work = tempfile.mkdtemp(prefix="snnc-evalbench-")
    model = build(os.path.join(work, "digits-shape.snnc"))
    rows, results = [], []
    for engine in a.engines.split(","):
        n = a.samples or SAMPLES.get(engine, DEFAULT_SAMPLES)
        rng = np.random.default_rng(1)
        x = (rng.random((n, 1, 8, 8, 32)) < 0.3).astype(np.float32)
        y = rng.integers(0, 10, n)
        runs = [("local", 1, None), ("local", 2, None)] + ([("ray", 2, "local")] if have_ray else [])
        base = None
        for kind, workers, address in runs:
            t0 = time.perf_counter()
            rep = evaluate(model, x, y, engine=engine, workers=workers, ray=address)
            wall = time.perf_counter() - t0
            base = base or (rep, wall)
            same = rep.predictions == base[0].predictions and rep.spikes == base[0].spikes
            results.append(dict(engine=engine, cluster=kind, workers=workers, samples=n,
                                seconds=wall, samples_per_second=n / wall,
                                speedup_vs_1=base[1] / wall, identical_to_1_worker=same))
            rows.append([engine, kind, workers, n, f"{wall:.2f}", f"{n / wall:.1f}",
                         f"{base[1] / wall:.2f}x", "yes" if same else "NO"])
    print(table(rows, ["engine", "cluster", "workers", "samples", "seconds", "samples/s", "vs 1 worker", "identical"]))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(dict(cores=os.cpu_count(), results=results), f, indent=1)
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
