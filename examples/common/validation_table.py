"""Print the validation runs of a method example (``run.py --validate``), best first.

Reads ``examples/<method>/out/validate-*/validation.json`` and groups them by settings: hold-out
accuracy after the last epoch (the selection criterion; mean over the seeds run, and per seed),
the best epoch's hold-out accuracy (shown only, not used) and training time.

    python examples/common/validation_table.py st_rsbp
    python examples/common/validation_table.py mnist/results/validation/stbp-mlp   # examples/mnist's copies
"""
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    method = argv[0] if argv else "st_rsbp"
    groups = {}
    if "/" in method:       # a folder of copied reports: examples/mnist/results/validation/<method>-<arch>
        paths = glob.glob(os.path.join(ROOT, method, "validate-*.json"))
    else:
        paths = glob.glob(os.path.join(ROOT, method, "out", "validate-*", "validation.json"))
    for p in sorted(paths):
        name = os.path.basename(p)[:-5] if "/" in method else os.path.basename(os.path.dirname(p))
        run = re.sub(r"-seed\d+$", "", name)     # trainer, qat|float, options
        groups.setdefault(run, []).append(json.load(open(p)))
    runs = [r for g in groups.values() for r in g]
    rows = sorted(groups.items(), key=lambda kv: -sum(r["validation_accuracy"] for r in kv[1]) / len(kv[1]))
    keys = [k for k in dict.fromkeys(k for r in runs for k in r["settings"]) if k != "batch"]
    print("| run | " + " | ".join(keys) + " | validation % (last epoch), mean | per seed | best epoch % per seed (not used) | train time |")
    print("|" + "---|" * (len(keys) + 5))
    for run, g in rows:
        g.sort(key=lambda r: r["seed"])
        mean = 100 * sum(r["validation_accuracy"] for r in g) / len(g)
        per = ", ".join(f"s{r['seed']} {100 * r['validation_accuracy']:.2f}" for r in g)
        best = ", ".join(f"{100 * max(h['accuracy'] for h in r['history']):.2f}" for r in g)
        secs = ", ".join(f"{r['train_seconds']:.0f} s" for r in g)
        print(f"| {run[len('validate-'):]} | " + " | ".join(str(g[0]["settings"].get(k)) for k in keys) + f" | {mean:.2f} | {per} | {best} | {secs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
