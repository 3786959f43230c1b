"""Print the docs/methods.md results table from examples/<method>/out/{qat,float}/report.json."""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ["stbp", "tssl_bp", "hm2_bp", "st_rsbp"]


def pct(x):
    return f"{100 * x:.2f}"


def trainer_name(text):
    """Short name of a report's trainer description."""
    if text.startswith("BPTT-surrogate"):
        return "BPTT + surrogate"
    if "spike-train-level" in text:
        return "own gradient (spike-train level)"
    if text.startswith("TSSL-BP's own"):
        return "own gradient (TSSL-BP)"
    if text.startswith("BPTT with STBP"):
        return "own gradient (STBP: BPTT + its surrogates)"
    return "BPTT + surrogate"


def main():
    rows = ["| method | training | trainer | data set | T | train time | PyTorch | onnxruntime | Lava float | Lava fixed | fixed − PyTorch | spikes identical (fixed vs PyTorch) | output spike agreement (fixed) | published |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in METHODS:
        for tag in ("qat", "float"):
            p = os.path.join(ROOT, m, "out", tag, "report.json")
            if not os.path.exists(p):
                continue
            r = json.load(open(p))
            e = r["engines"]
            fx = e.get("lava-fixed", {})
            rows.append(f"| {r['method']} | {'QAT' if tag == 'qat' else 'float'} | {trainer_name(r.get('trainer', ''))} | {r['dataset']} | {r['steps']} | "
                        f"{r.get('train_seconds', 0):.0f} s ({r.get('epochs', '?')} ep) | {pct(e['pytorch']['accuracy'])} | "
                        f"{pct(e['onnxruntime']['accuracy'])} | {pct(e.get('lava-float', {}).get('accuracy', float('nan')))} | "
                        f"{pct(fx.get('accuracy', float('nan')))} | {r.get('lava_fixed_minus_pytorch_points', float('nan')):+.2f} | "
                        f"{'yes' if fx.get('identical_to_pytorch') else 'no'} | {100 * fx.get('spike_agreement_vs_pytorch', 0):.3f} % | "
                        f"{r['published']} |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
