"""Where does a trained QAT network reach Loihi's 24-bit state limits, and does it matter?

    python examples/mnist/state_check.py --method hm2_bp --arch mlp [--tag qat]

Loads ``out/<method>-<arch>/<tag>/model.pt`` and its compiled ``.snnc``, runs the 1,000 test images
(a) on the PyTorch QAT forward as it is (u wraps at 24 bits, v saturates, as on Loihi), (b) on the
same forward with the wrap and saturation switched off, recording per image, layer and step where
u passed +-2**23 or |v| passed 2**23 - 1, and (c) on the reference simulator (bit-exact with Lava
fixed point). Prints which images differ from the reference under (a) and (b) and where (b)'s
differences come from; writes ``out/<method>-<arch>/<tag>/state_check.json``.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run  # noqa: E402
from run import method_run, torch  # noqa: E402

import numpy as np  # noqa: E402

import snnc  # noqa: E402
from snnc.nn import neurons  # noqa: E402


def _forward(net, x, batch=250):
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(x[i:i + batch]).float()).numpy()
                               for i in range(0, len(x), batch)])


def _unlimited(net, x, batch=250):
    """The forward without wrap / saturation; per image, the (layer, step, kind) where they would act."""
    hits, where = [], {}
    wrap, sat = neurons._wrap_u, neurons._saturate_v
    layer = {}

    def rec(kind):
        def f(t):
            m = (t > neurons._HALF) | (t <= -neurons._HALF) if kind == "u" else t.abs() > neurons._VMAX
            m = m.reshape(m.shape[0], -1).any(1)
            hits.append((layer["name"], layer["t"], kind, m.numpy().copy()))
            if kind == "v":
                layer["t"] += 1
            return t
        return f

    lifs = {m: n for n, m in net.named_modules() if isinstance(m, neurons.LIF)}

    def pre(mod, _inp):
        layer.update(name=lifs[mod], t=0)
    handles = [m.register_forward_pre_hook(pre) for m in lifs]
    neurons._wrap_u, neurons._saturate_v = rec("u"), rec("v")
    try:
        ys = []
        for i in range(0, len(x), batch):
            hits.clear()
            ys.append(_forward(net, x[i:i + batch], batch))
            for name, t, kind, m in hits:
                for j in np.flatnonzero(m):
                    where.setdefault(int(i + j), []).append((name, t, kind))
        return np.concatenate(ys), where
    finally:
        neurons._wrap_u, neurons._saturate_v = wrap, sat
        for h in handles:
            h.remove()


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--method", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--tag", default="qat")
    p.add_argument("--out", default=None, help="the run's --out (default out/<method>-<arch>)")
    p.add_argument("--quick", action="store_true", help="a --quick run: its 24 test images")
    a = p.parse_args(argv)
    s = run.spec(a.method, a.arch, a.quick)
    out = os.path.join(a.out or os.path.join(HERE, "out", f"{a.method}-{a.arch}"), a.tag)
    net = s["build"](True)
    method_run.load(net, os.path.join(out, "model.pt"))
    net.eval()
    _, _, x_te, _ = s["data"]()
    y_lim = _forward(net, x_te)
    y_free, where = _unlimited(net, x_te)
    y_ref = snnc.run(os.path.join(out, f"{s['name']}.snnc"), x_te.astype(np.float32),
                     backend="reference").output
    diff = lambda y: [int(i) for i in np.flatnonzero((y != y_ref).reshape(len(y), -1).any(1))]  # noqa: E731
    d_lim, d_free = diff(y_lim), diff(y_free)
    rep = dict(images=int(len(x_te)), differ_from_reference_with_limits=d_lim,
               differ_from_reference_without_limits=d_free,
               images_reaching_limits=sorted(where),
               first_limit_hit={str(i): dict(zip(("layer", "step", "state"), where[i][0])) for i in sorted(where)},
               limits_hit_per_image={str(i): len(where[i]) for i in sorted(where)})
    print(f"{len(x_te)} test images; QAT forward with 24-bit wrap/saturation vs reference: "
          f"{len(d_lim)} differ {d_lim}")
    print(f"without wrap/saturation: {len(d_free)} differ {d_free}")
    kinds = {k: sorted(i for i, h in where.items() if any(x[2] == k for x in h)) for k in ("u", "v")}
    rep.update(images_u_wrap=len(kinds["u"]), images_v_saturation=len(kinds["v"]))
    print(f"images where u passed +-2**23 (would wrap): {len(kinds['u'])}; where |v| passed 2**23 - 1 "
          f"(saturates): {len(kinds['v'])}")
    for i in d_free:
        hits = where.get(i, [])
        print(f"  image {i} (differs without the limits): {sum(x[2] == 'u' for x in hits)} u-wrap and "
              f"{sum(x[2] == 'v' for x in hits)} v-saturation (layer, step) events, first {hits[:1]}")
    with open(os.path.join(out, "state_check.json"), "w") as f:
        json.dump(rep, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
