"""Per-sample time of the Lava CPU simulation (``snnc.backends.lava_backend.run_lava``) under its
speed options, and a check that every option gives the same spikes.

    .venv/bin/python benchmarks/lava_speed.py [--samples 8] [--nets conv,dense,digits] [--modes fixed,float]

Configurations (``conv_as`` / ``io``, see ``snnc/backends/lava_plan.py``):
  before   conv  / ringbuffer   (Lava Conv processes, RingBuffer source/sinks via Var.set/get)
  conv     conv  / channels     (Lava Conv processes, io Injector/Extractor)
  after    auto  / channels     (the run_lava default: exact Conv->Dense lowering when small)
Per-sample time excludes building and compiling the Lava network (reported separately).
Nets: tests/slayer_nets.py conv_net (2x12x12, T=32) and dense_net (T=64), and "digits"
(1x8x8 -> Conv 16 3x3 pad 1 -> Pool 2 -> Flatten -> Dense 256->10, T=32; random weights).
Timings on a shared machine are noisy: compare ratios within one run.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

CONFIGS = {"before": ("conv", "ringbuffer"), "conv": ("conv", "channels"), "after": ("auto", "channels")}


def slayer_graph(name, n):
    import slayer_nets
    from test_lava_backend import slayer_to_ir
    net, x = slayer_nets.ALL[name](N=n)
    return slayer_to_ir(net, x.shape[1:-1]), x.numpy()


def digits_graph(n, T=32, seed=0):
    from snnc.compiler.ir import Conv2d, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output, SumPool2d
    from snnc.compiler.quantize import quantize
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("in", Input((1, 8, 8)))
    g.add("conv", Conv2d(rng.normal(0.3, 0.8, (16, 1, 3, 3)), padding=(1, 1)), "in")
    g.add("lif1", CubaLIF((16, 8, 8), 0.25, 0.03, 1.25), "conv")
    g.add("d1", Delay(np.array(1)), "lif1")
    g.add("pool", SumPool2d((2, 2), (2, 2), weight=1.0), "d1")
    g.add("lif2", CubaLIF((16, 4, 4), 0.25, 0.03, 1.25), "pool")
    g.add("d2", Delay(np.array(1)), "lif2")
    g.add("flat", Flatten(), "d2")
    g.add("fc", Dense(rng.normal(0.05, 0.3, (10, 256))), "flat")
    g.add("lif3", CubaLIF((10,), 0.25, 0.03, 1.25), "fc")
    g.add("out", Output((10,)), "lif3")
    x = (rng.random((n, 1, 8, 8, T)) < 0.3).astype(np.float32)
    return quantize(g), x


def per_sample(res, n):
    t = res.timing
    if "compile" in t:                       # channels: compile excludes the first sample
        return (t["total"] - t["compile"]) / n, t["compile"]
    return (t["total"] - t["compile_and_first"]) / max(n - 1, 1), t["compile_and_first"]


def main():
    from snnc.backends.lava_backend import run_lava
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--nets", default="conv,dense,digits")
    ap.add_argument("--modes", default="fixed,float")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    a = ap.parse_args()
    for net in a.nets.split(","):
        g, x = digits_graph(a.samples) if net == "digits" else slayer_graph(net, a.samples)
        for mode in a.modes.split(","):
            outs = {}
            for cfg in a.configs.split(","):
                conv_as, io = CONFIGS[cfg]
                r = run_lava(g, x, mode=mode, conv_as=conv_as, io=io, timeout=3600)
                ps, comp = per_sample(r, a.samples)
                t = r.timing
                split = ", ".join(f"{k} {t[k] / a.samples:.3f}" for k in ("input", "reset", "run", "read"))
                print(f"{net:7s} {mode:5s} {cfg:7s} (conv_as={conv_as}, io={io}): {ps:.3f} s/sample "
                      f"[per sample: {split}] build+compile {t['build'] + comp:.2f} s, "
                      f"wall {r.seconds:.1f} s for {a.samples}", flush=True)
                outs[cfg] = r
            first = next(iter(outs.values()))
            same = all(np.array_equal(r.output, first.output)
                       and all(np.array_equal(r.counts[k], first.counts[k]) for k in first.counts)
                       for r in outs.values())
            print(f"{net:7s} {mode:5s} identical spikes across configs: {same} (output spikes "
                  f"{int(first.output.sum())}, per population {first.layer_totals()})", flush=True)


if __name__ == "__main__":
    main()
