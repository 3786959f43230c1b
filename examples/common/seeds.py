"""Summarise the method examples across seeds: PyTorch and Lava fixed_pt test accuracy, mean ± std.

Reads ``examples/<method>/out/<tag>-seed<k>/report.json`` (``run.py --seed k``) and, as seed 0,
``examples/<method>/out/<tag>/report.json``; one row per method and tag with at least two seeds.
std is the sample standard deviation (n - 1). Seeds change the initialisation and the mini-batch
order only (the data sets are fixed). A row is flagged when its reports disagree on the
settings recorded in them (epochs, lr, options, architecture, trainer), e.g. a seed-0 report
left from an older version of the example (reports older than the ``settings`` record are
compared on the other fields only).

    python examples/common/seeds.py [--json]
"""
import glob
import json
import os
import re
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ["stbp", "tssl_bp", "hm2_bp", "st_rsbp"]
SAME = ("training", "trainer", "architecture", "dataset", "epochs", "settings")


def collect(root=ROOT, methods=METHODS):
    """{(method, tag): {seed: report}} for every tag with a ``-seed<k>`` run."""
    runs = {}
    for m in methods:
        for path in sorted(glob.glob(os.path.join(root, m, "out", "*-seed*", "report.json"))):
            d = os.path.basename(os.path.dirname(path))
            hit = re.fullmatch(r"(.+)-seed(\d+)", d)
            if not hit or d.startswith("quick-"):
                continue
            tag, seed = hit.group(1), int(hit.group(2))
            runs.setdefault((m, tag), {})[seed] = path
    out = {}
    for (m, tag), by_seed in runs.items():
        base = os.path.join(root, m, "out", tag, "report.json")
        if os.path.exists(base):
            by_seed.setdefault(0, base)
        out[(m, tag)] = {k: json.load(open(p)) for k, p in sorted(by_seed.items())}
    return out


def summarise(reports):
    """Per seed and mean ± std of PyTorch and Lava fixed accuracy (%), identical-spike flags."""
    seeds = sorted(reports)
    acc = {e: [100 * reports[k]["engines"][e]["accuracy"] if e in reports[k]["engines"] else np.nan
               for k in seeds] for e in ("pytorch", "lava-fixed")}
    ident = [reports[k]["engines"].get("lava-fixed", {}).get("identical_to_pytorch") for k in seeds]
    mismatch = [f for f in SAME                      # among the reports that record the field
                if len({json.dumps(reports[k][f], sort_keys=True) for k in seeds if f in reports[k]}) > 1]
    stat = {e: dict(per_seed=v, mean=float(np.nanmean(v)),
                    std=float(np.nanstd(v, ddof=1)) if np.sum(~np.isnan(v)) > 1 else float("nan"))
            for e, v in acc.items()}
    return dict(method=reports[seeds[0]]["method"], seeds=seeds, accuracy=stat, identical=ident,
                train_seconds=[reports[k].get("train_seconds") for k in seeds], settings_differ=mismatch)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    rows = [dict(summarise(r), tag=tag) for (m, tag), r in collect().items() if len(r) > 1]
    if "--json" in argv:
        print(json.dumps(rows, indent=1))
        return 0

    def f(s):
        v = [f"{x:.2f}" for x in s["per_seed"]]
        return f"{s['mean']:.2f} ± {s['std']:.2f} ({' / '.join(v)})"
    print("| method | run | seeds | PyTorch test % mean ± std (per seed) | Lava fixed test % mean ± std (per seed) "
          "| Lava fixed spikes identical to PyTorch | train time per seed |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ident = ", ".join({True: "yes", False: "no", None: "-"}[x] for x in r["identical"])
        secs = " / ".join(f"{s:.0f} s" if s is not None else "-" for s in r["train_seconds"])
        note = f" (reports differ in: {', '.join(r['settings_differ'])})" if r["settings_differ"] else ""
        print(f"| {r['method']} | {r['tag']}{note} | {', '.join(map(str, r['seeds']))} | {f(r['accuracy']['pytorch'])} | "
              f"{f(r['accuracy']['lava-fixed'])} | {ident} | {secs} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
