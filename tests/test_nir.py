"""NIR graphs in and out (snnc/frontends/nir_import.py, snnc/backends/nir_export.py).

Outside graphs and recorded traces are in tests/data/nir/ (README names their source). The
oracles are independent: the NIR paper's recorded Lava CPU and Loihi 2 traces, and the graph as
Norse and snnTorch load it themselves (their own importers, their own forward).
"""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import snnc
from snnc.backends.reference import _Sim
from snnc.compiler.ir import CubaLIF, Output
from snnc.compiler.quantize import quantize
from snnc.errors import SnncError
from snnc.frontends.nir_import import import_nir

DATA = os.path.join(os.path.dirname(__file__), "data", "nir")


def nir_file(name):
    return os.path.join(DATA, name)


# ----------------------------------------------------------------------------- lif_norse.nir
def lif_input() -> np.ndarray:
    """The input of the NIR paper's LIF task (paper/01_lif/lif_lava.ipynb, load_data): 100 entries
    from the ISI list, each followed by 9 zeros: 1000 steps."""
    isis = [6, 15, 4, 3, 0, 2, 1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            5, 0, 14]
    d1 = list(np.concatenate([isi * [0] + [1] for isi in isis]))[:100]
    return np.array([[e] + 9 * [0] for e in d1], dtype=np.float64).reshape(-1)


def trace(graph, mode, pop="1"):
    """v and spikes of population ``pop`` at every step (reference engine, one sample)."""
    g = quantize(graph)
    sim = _Sim(g, mode, 1)
    d = lif_input()
    v, s = np.zeros(d.size), np.zeros(d.size)
    for t in range(d.size):
        out = sim.step(t, {"input": np.array([[d[t]]])})
        v[t] = sim.state[pop]["v"].reshape(-1)[0]
        s[t] = out[pop].reshape(-1)[0]
    return v, s


def recorded(name):
    rec = np.loadtxt(nir_file(name), delimiter=",")
    assert np.array_equal(rec[:, 0], lif_input())          # the same input, step for step
    return rec[:, 1], rec[:, 2]


def test_lif_norse_lava_cpu_fixed_trace_bit_exact():
    """Reference fixed point on the script's integer grid == Lava CPU fixed_pt recorded, v and
    spikes, every step, with Lava's one-step synapse latency (recorded step t+1 = snnc step t)."""
    g = import_nir(nir_file("lif_norse.nir"), convention="lava", rounding="nir_to_lava")
    v, s = trace(g, "fixed")
    rv, rs = recorded("lif_lava_cpu_fixed.csv")
    assert np.nonzero(s)[0].tolist() == [460, 510, 710, 760]
    assert np.array_equal(s[:-1], rs[1:]) and rs[0] == 0
    assert np.array_equal(v[:-1], rv[1:])                   # bit-exact integers, 999 steps
    assert v.max() == 1589                                  # just under vth << 6 = 1600 between spikes


def test_lif_norse_loihi2_hardware_spikes():
    """The recorded Loihi 2 run: identical spikes; v identical except on the 4 spike steps, where
    the chip reports 128 instead of 0 (lava-nc/lava #282)."""
    g = import_nir(nir_file("lif_norse.nir"), convention="lava", rounding="nir_to_lava")
    v, s = trace(g, "fixed")
    rv, rs = recorded("lif_lava_loihi_fixed.csv")
    assert np.array_equal(s[:-1], rs[1:])
    diff = np.nonzero(v[:-1] != rv[1:])[0]
    assert diff.tolist() == [460, 510, 710, 760] and np.all(rv[1:][diff] == 128) and np.all(v[diff] == 0)


def test_lif_norse_lava_cpu_float_trace():
    """Reference float (forward Euler, dt = 1e-4, the plain reading) == Lava CPU floating_pt."""
    g = import_nir(nir_file("lif_norse.nir"), convention="lava")
    v, s = trace(g, "float")
    rv, rs = recorded("lif_lava_cpu_float.csv")
    assert np.array_equal(s[:-1], rs[1:])
    assert np.max(np.abs(v[:-1] - rv[1:])) < 1e-7          # the csv's float precision


@pytest.mark.timeout(300)
def test_lif_norse_on_lava_fixed():
    """snnc's Lava fixed-point engine on the same graph: spikes and final (u, v) == reference,
    and so the recorded trace (IR time: no lag, as the reference)."""
    from snnc.backends.lava_backend import run_lava
    from snnc.backends.reference import run_reference
    g = quantize(import_nir(nir_file("lif_norse.nir"), convention="lava", rounding="nir_to_lava"))
    x = lif_input().reshape(1, 1, -1)
    lava = run_lava(g, x, "fixed", timeout=240, record_state=True)
    ref = run_reference(g, x, "fixed")
    assert np.array_equal(lava.output, ref.output)
    assert np.nonzero(lava.output.reshape(-1))[0].tolist() == [460, 510, 710, 760]
    _, rs = recorded("lif_lava_cpu_fixed.csv")
    assert np.array_equal(lava.output.reshape(-1)[:-1], rs[1:])
    assert np.array_equal(lava.state["1"]["v"], ref_state_v(g, x))   # final v, read back from Lava
    gf = quantize(import_nir(nir_file("lif_norse.nir"), convention="lava"))
    lava_float = run_lava(gf, x, "float", timeout=240)
    _, rf = recorded("lif_lava_cpu_float.csv")
    assert np.array_equal(lava_float.output.reshape(-1)[:-1], rf[1:])


def ref_state_v(graph, x):
    from snnc.backends.reference_spec import run_reference_spec
    return run_reference_spec(graph, x, "fixed", state_steps={"1": x.shape[-1]}).state["1"]["v"]


# ----------------------------------------------------------------------------- oracles
def _quiet():
    import logging
    import torch  # lazy: heavy
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)            # tiny per-step tensors: threads only cost here


def _spikes(rng, shape, steps, p, n):
    return (rng.random((n,) + tuple(shape) + (steps,)) < p).astype(np.float32)


def norse_forward(graph, x, dt, hidden=()):
    """The graph as Norse 1.1 loads it (``norse.torch.from_nir``, nirtorch's executor), one sample
    at a time (the CNN's Flatten(start_dim=0) folds the batch), step by step. ``hidden``: node
    names whose outputs (nirtorch's per-step cache) are returned too, as {name: (N, *shape, T)}."""
    import norse.torch as nt  # lazy: heavy
    import torch  # lazy: heavy
    _quiet()
    outs, rec = [], {k: [] for k in hidden}
    for n in range(x.shape[0]):
        m = nt.from_nir(graph, dt=dt)
        state, ys, hs = None, [], {k: [] for k in hidden}
        with torch.no_grad():
            for t in range(x.shape[-1]):
                y, state = m(torch.from_numpy(x[n:n + 1, ..., t]), state)
                ys.append(y.numpy().reshape(-1))
                for k in hidden:
                    hs[k].append(state.cache[k.replace(".", "_")].numpy().reshape(-1))   # nirtorch: "." -> "_"
        outs.append(np.stack(ys, -1))
        for k in hidden:
            rec[k].append(np.stack(hs[k], -1))
    out = np.stack(outs)
    return (out, {k: np.stack(v) for k, v in rec.items()}) if hidden else out


def lif1_only_graph(tmp_path):
    """two_lif_neurons.nir cut after its bias-driven lif1 (the file's output, lif2, never spikes)."""
    import nir  # lazy: heavy
    g = nir.read(nir_file("two_lif_neurons.nir"))
    nodes = {k: g.nodes[k] for k in ("in", "linear1", "lif1")}
    nodes["out"] = nir.Output(g.nodes["lif1"].output_type)
    path = str(tmp_path / "lif1.nir")
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=[("in", "linear1"), ("linear1", "lif1"), ("lif1", "out")]))
    return path


NORSE_CASES = [  # file, input name, steps, input spike probability, samples
    ("lif_norse.nir", 400, 0.3, 3),
    ("braille_noDelay_bias_zero.nir", 256, 0.1, 4),
    ("braille_noDelay_noBias_subtract.nir", 256, 0.1, 4),
    ("braille_norse.nir", 256, 0.1, 4),
    ("spyx_braille_noDelay_bias_zero_subgraph.nir", 256, 0.1, 4),
    ("spyx_braille_noDelay_noBias_subtract_subgraph.nir", 256, 0.1, 4),
    ("cnn_sinabs.nir", 40, 0.3, 2),
    ("two_lif_neurons.nir", 400, 0.0, 1),
    ("two_lif_neurons.nir:lif1", 1000, 0.0, 1),
]


@pytest.mark.parametrize("name,steps,p,n", NORSE_CASES)
def test_norse_oracle_identical(name, steps, p, n, tmp_path):
    """snnc's float engine == Norse's own forward of the graph (norse convention, dt = 1e-4),
    every output spike, on random input spikes."""
    import nir  # lazy: heavy
    path = lif1_only_graph(tmp_path) if name.endswith(":lif1") else nir_file(name)
    g = nir.read(path)
    inp = next(k for k, v in g.nodes.items() if isinstance(v, nir.Input))
    shape = [int(s) for s in next(iter(g.nodes[inp].input_type.values()))]
    x = _spikes(np.random.default_rng(0), shape, steps, p, n)
    ir = import_nir(path, convention="norse", dt=1e-4)
    pops = [k for k, v in ir.nodes.items() if isinstance(v, CubaLIF) and k in g.nodes]
    for k in pops:                                   # every population, not only the output
        ir.add(f"{k}.out", Output(ir.nodes[k].shape), k)
    want, hidden = norse_forward(g, x, 1e-4, pops)
    res = snnc.run(snnc.compile(ir), x, backend="reference-float")
    got = res.output.reshape(want.shape)
    assert np.array_equal(got, want), f"agreement {np.mean(got == want):.5f}"
    for k in pops:
        h = res.outputs[f"{k}.out"].reshape(hidden[k].shape)
        assert np.array_equal(h, hidden[k]), f"{k}: agreement {np.mean(h == hidden[k]):.5f}"
        assert k in ("1", "lif1") or hidden[k].sum() > 0 or p == 0, k
    if name.endswith(":lif1"):
        assert want.sum() >= 4                    # spikes from v_leak alone (no input at all)
    elif p > 0:
        assert want.sum() > 0


def snntorch_modules(path, reset=None):
    """The graph as snnTorch 1.0 converts it: its own RNN-subgraph detection and node conversion
    (``snntorch.import_nir``). Its nirtorch 2.6 executor cannot run these graphs ("'GraphModule'
    object has no attribute 'items'"), so a plain loop runs the chain. ``reset``: rebuild the
    neurons' reset as snnTorch would with that ``reset_mechanism``."""
    import contextlib
    import io

    import nir  # lazy: heavy
    import snntorch as snn  # lazy: heavy
    from snntorch import import_nir as sin  # lazy: heavy
    _quiet()
    g = nir.read(path)
    with contextlib.redirect_stdout(io.StringIO()):
        g = sin._replace_rnn_subgraph_with_nirgraph(g)
        mods = {k: sin._nir_to_snntorch_module(v) for k, v in g.nodes.items()}
    for m in mods.values():
        if reset and isinstance(m, snn.SpikingNeuron):
            m.reset_mechanism = reset
            m.state_function = {"subtract": m._base_sub, "zero": m._base_zero}[reset]
    succ = dict(g.edges)
    order, n = [], "input"
    while n in succ:
        n = succ[n]
        order.append(n)
    return order, mods


def snntorch_forward(order, mods, x):
    import snntorch as snn  # lazy: heavy
    import torch  # lazy: heavy
    state, out = {}, []
    with torch.no_grad():
        for t in range(x.shape[-1]):
            h = torch.from_numpy(x[..., t])
            for k in order:
                m = mods[k]
                if m is None:
                    continue
                if isinstance(m, snn.RSynaptic):
                    z = torch.zeros(h.shape[0], m.recurrent.weight.shape[0])
                    spk, syn, mem = m(h, *(state.get(k) or (z, z.clone(), z.clone())))
                    state[k], h = (spk, syn, mem), spk
                elif isinstance(m, snn.Synaptic):
                    spk, syn, mem = m(h, *(state.get(k) or (torch.zeros_like(h), torch.zeros_like(h))))
                    state[k], h = (syn, mem), spk
                else:
                    h = m(h)
            out.append(h.numpy())
    return np.stack(out, -1)


SNNTORCH_CASES = [
    "braille_noDelay_bias_zero.nir", "braille_noDelay_noBias_subtract.nir", "braille_norse.nir",
    "spyx_braille_noDelay_bias_zero_subgraph.nir", "spyx_braille_noDelay_noBias_subtract_subgraph.nir",
]


@pytest.mark.parametrize("name", SNNTORCH_CASES)
def test_snntorch_oracle_identical(name):
    """snnc's float engine == snnTorch's own neurons (RSynaptic, Synaptic) as its importer builds
    them, zero reset, on random input: every output spike (recurrent CubaLIF, biases)."""
    x = _spikes(np.random.default_rng(1), (12,), 256, 0.1, 4)
    want = snntorch_forward(*snntorch_modules(nir_file(name)), x)
    got = snnc.run(snnc.compile(import_nir(nir_file(name), convention="snntorch")), x, backend="reference-float")
    assert np.array_equal(got.output, want), f"agreement {np.mean(got.output == want):.5f}"
    assert want.sum() > 0


def test_snntorch_oracle_subtract_reset():
    """The paper's "subtract" braille graph read with --reset subtract, against snnTorch's neurons
    with reset_mechanism="subtract": the recurrent layer (an RSynaptic, whose reset is one step
    late) is identical, and so is the output Synaptic, whose immediate subtraction is read as
    snnTorch's own rule (the IR's "subtract_snntorch": where a membrane stays above threshold after
    the subtraction, snnTorch tests the spike on v - thr, its "avoid double reset")."""
    x = _spikes(np.random.default_rng(1), (12,), 256, 0.1, 4)
    path = nir_file("braille_noDelay_noBias_subtract.nir")
    order, mods = snntorch_modules(path)
    m = mods["lif1"]
    m.reset_mechanism, m.state_function = "subtract", m._base_sub
    want = snntorch_forward(order, mods, x)
    from dataclasses import replace
    ir = import_nir(path, convention="snntorch", reset="subtract")
    assert ir.nodes["lif1.lif"].delayed_subtract and ir.nodes["lif2"].reset == "subtract_snntorch"
    ir.nodes["lif2"] = replace(ir.nodes["lif2"], reset="zero", reset_delay=False)
    got = snnc.run(snnc.compile(ir), x, backend="reference-float").output
    assert np.array_equal(got, want) and want.sum() > 50
    want = snntorch_forward(*snntorch_modules(path, "subtract"), x)
    got = snnc.run(snnc.compile(import_nir(path, convention="snntorch", reset="subtract")), x,
                   backend="reference-float").output
    assert np.array_equal(got, want), f"agreement {np.mean(got == want):.5f}"


LAVA_CASES = [  # file, convention, options, input shape, steps, p
    ("braille_noDelay_bias_zero.nir", "snntorch", {}, (12,), 100, 0.1),
    ("braille_noDelay_noBias_subtract.nir", "snntorch", {"reset": "subtract"}, (12,), 100, 0.1),
    ("cnn_sinabs.nir", "norse", {"dt": 1e-4}, (2, 34, 34), 20, 0.3),
    ("two_lif_neurons.nir:lif1", "norse", {"dt": 1e-4}, (1,), 400, 0.0),
    ("spyx_braille_noDelay_noBias_subtract_subgraph.nir", "spyx", {"dt": 1e-4}, (12,), 100, 0.2),
    ("cnn_sinabs.nir", "sinabs", {}, (2, 34, 34), 20, 0.05),
]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name,conv,opts,shape,steps,p", LAVA_CASES)
def test_fixed_engines_agree(name, conv, opts, shape, steps, p, tmp_path):
    """Quantized (Loihi 2 fixed point): snnc's reference == Lava fixed_pt, every spike of every
    population (bias unit, recurrence, refractory RSynaptic, conv + pooling, bias-driven)."""
    path = lif1_only_graph(tmp_path) if name.endswith(":lif1") else nir_file(name)
    g = snnc.compile(import_nir(path, convention=conv, **opts))
    x = _spikes(np.random.default_rng(2), shape, steps, p, 1)
    ref = snnc.run(g, x, backend="reference")
    try:
        lava = snnc.run(g, x, backend="lava-fixed", timeout=240)
    except SnncError as e:
        if "not supported" in str(e) and "reset" in str(e):
            pytest.skip(f"Lava backend: {e}")           # reset by subtraction: branch neurons
        raise
    assert np.array_equal(ref.output, lava.output)
    for k in ref.counts:
        assert np.array_equal(ref.counts[k], lava.counts[k]), k
    assert sum(int(v.sum()) for v in ref.counts.values()) > 0


# ----------------------------------------------------------------------------- export, round trips
def _same_run(g1, g2, x, backend):
    a, b = snnc.run(g1, x, backend=backend), snnc.run(g2, x, backend=backend)
    assert np.array_equal(a.output, b.output)
    assert set(a.counts) <= set(b.counts)
    for k in a.counts:
        assert np.array_equal(a.counts[k], b.counts[k]), k
    return a


@pytest.mark.parametrize("name", ["dense", "delay", "conv", "recurrent"])
def test_roundtrip_onnx_nir(name, tmp_path):
    """SLAYER net -> ONNX -> snnc -> NIR -> snnc: identical spikes in every population, fixed
    point and float (the NIR file in the discrete convention, exact values in its metadata)."""
    sys.path.insert(0, os.path.dirname(__file__))
    from slayer_nets import ALL

    from snnc.backends.nir_export import export_nir
    net, x = ALL[name]()
    snnc.export(net, x, str(tmp_path / "m.onnx"))
    g1 = snnc.compile(str(tmp_path / "m.onnx"))
    export_nir(g1, str(tmp_path / "m.nir"))
    g2 = snnc.compile(str(tmp_path / "m.nir"))
    assert g2.metadata["dt"] == 1e-4 and g2.metadata["format"] == "nir"
    a = _same_run(g1, g2, x.numpy(), "reference")
    assert a.output.sum() > 0
    _same_run(g1, g2, x.numpy(), "reference-float")




def _netx_root():
    from lava_dl_files import NETX_ROOT as root
    if not os.path.isdir(root):
        pytest.skip(f"lava-dl's netx test networks not found at {root}")
    return root


@pytest.mark.parametrize("name,opts", [("gts/ntidigits/ntidigits.net", {"num_layers": 5}), ("tiny.net", {}),
                                       ("mnist.net", {})])
def test_roundtrip_netx_nir_netx(name, opts, tmp_path):
    """lava-dl's shipped .net -> snnc -> NIR -> snnc -> .net -> snnc: identical spikes in every
    population (reference fixed point). ntidigits: axonal delays; tiny: a bias-driven conv input
    layer; mnist: a non-leaky current (iDecay 0: tau_syn = w_in = inf)."""
    from snnc.backends.netx_export import export_netx
    from snnc.backends.nir_export import export_nir
    from snnc.frontends.netx_import import import_netx
    g1 = quantize(import_netx(os.path.join(_netx_root(), name), **opts))
    export_nir(g1, str(tmp_path / "a.nir"))
    g2 = snnc.compile(str(tmp_path / "a.nir"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_netx(g2, str(tmp_path / "b.net"))
    g3 = quantize(import_netx(str(tmp_path / "b.net")))
    shape = g1.shapes()[g1.inputs[0]]
    rng = np.random.default_rng(0)
    if g1.nodes[g1.inputs[0]].kind == "bias":       # netx input layer: a drive through bias_mant
        x = np.repeat(np.round(rng.random((2,) + tuple(shape) + (1,)) * 192) / 64, 30, -1)
    else:
        x = _spikes(rng, shape, 40, 0.2, 2)
    a = _same_run(g1, g2, x, "reference")
    _same_run(g1, g3, x, "reference")
    assert sum(int(v.sum()) for v in a.counts.values()) > 0


NIR_104 = os.path.join(DATA, "nir_1_0_4")       # nir 1.0.4's own source (tag v1.0.4), see README


def read_with_nir_104(path):
    """Read ``path`` with nir 1.0.4's reader (its source from the v1.0.4 tag, in a child process:
    1.0.4 cannot be installed beside 1.0.8): (returncode, node types, last error line)."""
    code = ("import sys, nir; assert nir.__file__.startswith(sys.argv[2]), nir.__file__; "
            "g = nir.read(sys.argv[1]); print(','.join(sorted({type(n).__name__ for n in g.nodes.values()})))")
    r = subprocess.run([sys.executable, "-c", code, path, NIR_104], capture_output=True, text=True, check=False,
                       env={"PYTHONPATH": NIR_104, "PATH": os.environ.get("PATH", "")}, timeout=120)
    return r.returncode, r.stdout.strip(), (r.stderr.strip().splitlines() or [""])[-1]


@pytest.mark.parametrize("name,opts", [("braille_noDelay_bias_zero.nir", {"convention": "snntorch"}),
                                       ("cnn_sinabs.nir", {"convention": "norse", "dt": 1e-4})])
def test_export_nir_104_loads_in_nir_104(name, opts, tmp_path):
    """--nir-compat 1.0.4 files load in nir 1.0.4's reader (what Sinabs and Rockpool pin); the
    default (1.0.8) file does not (v_reset); both read back into snnc with identical spikes."""
    from snnc.backends.nir_export import export_nir
    g = snnc.compile(import_nir(nir_file(name), **opts))
    x = _spikes(np.random.default_rng(0), g.shapes()[g.inputs[0]], 30, 0.2, 1)
    for compat in (None, "1.0.4"):
        out = str(tmp_path / f"{compat}.nir")
        export_nir(g, out, compat=compat)
        rc, types, err = read_with_nir_104(out)
        if compat is None:
            assert rc != 0 and "unexpected keyword argument 'v_reset'" in err
        else:
            assert rc == 0, err
            assert "Input" in types and "Output" in types and ("CubaLIF" in types or "IF" in types)
        _same_run(g, snnc.compile(out), x, "reference")


def test_export_nir_read_by_norse(tmp_path):
    """An exported file (discrete convention, dt = 1e-4) is what Norse runs: snnc's own float run
    == Norse's from_nir forward of snnc's file (the CNN: conv, sum pooling, IF)."""
    import nir  # lazy: heavy

    from snnc.backends.nir_export import export_nir
    g = snnc.compile(import_nir(nir_file("cnn_sinabs.nir"), convention="norse", dt=1e-4))
    export_nir(g, str(tmp_path / "out.nir"))
    x = _spikes(np.random.default_rng(3), (2, 34, 34), 30, 0.3, 1)
    want = norse_forward(nir.read(str(tmp_path / "out.nir")), x, 1e-4)
    got = snnc.run(g, x, backend="reference-float").output
    assert np.array_equal(got.reshape(want.shape), want) and want.sum() > 0


def test_cli_compile_and_export_nir(tmp_path, cli):
    """snnc compile m.nir --convention ... -o m.snnc; snnc export-nir m.snnc -o out.nir [--nir-compat];
    bad options exit 2 with one line."""
    src = nir_file("braille_noDelay_bias_zero.nir")
    rc, out, err = cli("compile", src, "--convention", "snntorch", "-o", str(tmp_path / "m.snnc"))
    assert rc == 0, err
    rc, out, err = cli("export-nir", str(tmp_path / "m.snnc"), "-o", str(tmp_path / "out.nir"))
    assert rc == 0 and "exported" in out, err
    rc, out, err = cli("export-nir", str(tmp_path / "m.snnc"), "-o", str(tmp_path / "old.nir"), "--nir-compat", "1.0.4")
    assert rc == 0 and read_with_nir_104(str(tmp_path / "old.nir"))[0] == 0
    rc, out, err = cli("compile", nir_file("braille_noDelay_noBias_subtract.nir"), "--convention", "snntorch",
                       "--reset", "subtract", "--reset-timing", "delayed", "-o", str(tmp_path / "sub.snnc"))
    assert rc == 0, err
    sub = snnc.compile(str(tmp_path / "sub.snnc"))
    assert sub.nodes["lif2"].delayed_subtract and sub.metadata["reset"] == "subtract"
    rc, out, err = cli("compile", str(tmp_path / "out.nir"), "-o", str(tmp_path / "again.snnc"))
    assert rc == 0, err
    g1, g2 = snnc.compile(str(tmp_path / "m.snnc")), snnc.compile(str(tmp_path / "again.snnc"))
    _same_run(g1, g2, _spikes(np.random.default_rng(0), (12,), 100, 0.1, 2), "reference")
    for args, msg in [((src, "-o", str(tmp_path / "x.snnc")), "give dt"),
                      ((nir_file("lif_norse.nir"), "--convention", "snntorch", "-o", str(tmp_path / "x.snnc")),
                       "r = tau/dt"),
                      ((nir_file("cnn_sinabs.nir"), "--convention", "snntorch", "-o", str(tmp_path / "x.snnc")),
                       "Leaky(beta=0.9)"),
                      ((nir_file("lif_norse.nir"), "--dt", "1e-3", "--reset-interval", "5", "-o",
                        str(tmp_path / "x.snnc")), ".net models only")]:
        rc, out, err = cli("compile", *args)
        assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err


# ----------------------------------------------------------------------------- conventions, refusals
def test_conventions_discretise_as_documented():
    """The formulas of docs/nir.md, on lif_norse.nir (tau = 2.5e-3, r = 1, v_th = 0.1)."""
    tau = float(np.float32(0.0025))
    g = import_nir(nir_file("lif_norse.nir"), dt=1e-4)                      # Euler: a = dt/tau
    assert g.nodes["1"].voltage_decay == pytest.approx(1e-4 / tau, rel=1e-12)
    assert g.nodes["0"].weight[0, 0] == pytest.approx(1e-4 / tau, rel=1e-12)     # gain a r folded in
    g = import_nir(nir_file("lif_norse.nir"), dt=1e-4, integrator="exact")   # a = 1 - exp(-dt/tau)
    assert g.nodes["1"].voltage_decay == pytest.approx(-np.expm1(-1e-4 / tau), rel=1e-12)
    g = import_nir(nir_file("lif_norse.nir"), convention="sinabs", dt=1e-4)  # exact, subtract, unit gain
    n = g.nodes["1"]
    assert n.reset == "subtract" and n.spike_compare == ">" and n.voltage_decay == pytest.approx(-np.expm1(-1e-4 / tau))
    assert g.nodes["0"].weight[0, 0] == 1.0                  # v = alpha v + I (Sinabs' norm_input=False)
    g = import_nir(nir_file("lif_norse.nir"), convention="spyx", dt=1e-4)    # unit gain, late spike, delayed sub
    assert g.nodes["1"].delayed_subtract and g.nodes["0"].weight[0, 0] == 1.0
    assert g.nodes["output.delay"].steps == 1
    g = import_nir(nir_file("braille_noDelay_bias_zero.nir"), convention="snntorch")
    h = g.nodes["lif1.lif"]
    assert h.current_decay == pytest.approx(0.45, abs=1e-6) and h.voltage_decay == pytest.approx(0.1, abs=1e-6)
    assert h.refractory == 1                   # RSynaptic's late zero reset (snnTorch 1.0.0)
    assert g.nodes["lif2"].refractory == 0 and g.nodes["lif2"].voltage_decay == pytest.approx(0.45, abs=1e-6)
    assert np.array_equal(g.nodes["fc1"].weight, np.asarray(import_nir_weight("braille_noDelay_bias_zero.nir", "fc1")))
    assert [d for s, d in g.edges if s == "lif1.lif"] == ["lif1.w_rec.delay", "fc2"]   # 1-step back edge
    g = import_nir(nir_file("spyx_braille_noDelay_bias_zero_subgraph.nir"), convention="snntorch")
    assert "lif1.lif1" in g.nodes and g.nodes["lif1.lif1"].refractory == 1            # nested, inlined


def import_nir_weight(name, node):
    import nir  # lazy: heavy
    return nir.read(nir_file(name)).nodes[node].weight


@pytest.mark.parametrize("name,opts,msg", [
    ("lif_norse.nir", {"convention": "snntorch"}, "not written by snntorch"),
    ("two_lif_neurons.nir", {"convention": "lava"}, "v_leak"),
    ("braille_noDelay_bias_zero.nir", {"convention": "norse"}, "unstable"),     # Norse's dt = 1e-3
    ("lif_norse.nir", {"dt": 1e-4, "reset": "bogus"}, "unknown reset"),
    ("lif_norse.nir", {"convention": "rockpool", "dt": 1e-4}, "Rockpool writes r"),
    ("lif_norse.nir", {}, "give dt"),
])
def test_refusals_name_node_and_reason(name, opts, msg):
    with pytest.raises(SnncError, match=msg):
        import_nir(nir_file(name), **opts)


def test_refuses_what_the_ir_cannot_run(tmp_path):
    """v_reset != 0, Conv1d: refused naming the node."""
    import nir  # lazy: heavy
    g = nir.read(nir_file("lif_norse.nir"))
    g.nodes["1"].v_reset = np.full(1, 0.05, np.float32)
    nir.write(str(tmp_path / "vr.nir"), g)
    with pytest.raises(SnncError, match=r"node '1' \(LIF\): v_reset"):
        import_nir(str(tmp_path / "vr.nir"), dt=1e-4)
    c = nir.NIRGraph(nodes={"input": nir.Input(np.array([2, 10])),
                            "c": nir.Conv1d(10, np.ones((3, 2, 3)), 1, 1, 1, 1, np.zeros(3)),
                            "output": nir.Output(np.array([3, 10]))},
                     edges=[("input", "c"), ("c", "output")])
    nir.write(str(tmp_path / "c1.nir"), c)
    with pytest.raises(SnncError, match=r"node 'c' \(Conv1d\)"):
        import_nir(str(tmp_path / "c1.nir"), dt=1e-4)


def test_lif_rockpool_recorded_trace():
    """The NIR paper's Rockpool LIF (lif_rockpool.nir, which nir 1.0.8's type check rejects: read
    without it) under --convention rockpool at dt = 1e-4 (exact decay, unit gain, r = tau
    exp(-dt/tau)/dt checked, subtract reset) == Rockpool's recorded run (lif_rockpool.csv):
    identical spikes, v to float32 precision, no lag."""
    rec = np.loadtxt(nir_file("lif_rockpool.csv"), delimiter=",")
    g = snnc.compile(import_nir(nir_file("lif_rockpool.nir"), convention="rockpool", dt=1e-4))
    sim = _Sim(g, "float", 1)
    v, s = np.zeros(len(rec)), np.zeros(len(rec))
    for t in range(len(rec)):
        out = sim.step(t, {"input": rec[t:t + 1, :1]})
        v[t] = sim.state["1_LIFNeuronTorch"]["v"].reshape(-1)[0]
        s[t] = out["1_LIFNeuronTorch"].reshape(-1)[0]
    assert np.array_equal(s, rec[:, 2]) and np.nonzero(s)[0].tolist() == [450, 500, 710, 760]
    assert np.max(np.abs(v - rec[:, 1])) < 1e-7


def _snntorch_net(reset, delay):
    import torch  # lazy: heavy
    import snntorch as snn  # lazy: heavy
    torch.manual_seed(0)
    kw = dict(init_hidden=True, reset_mechanism=reset, reset_delay=delay)
    net = torch.nn.Sequential(
        torch.nn.Linear(10, 20), snn.Leaky(beta=torch.full((20,), 0.9), threshold=torch.full((20,), 1.0), **kw),
        torch.nn.Linear(20, 5), snn.Leaky(beta=torch.full((5,), 0.8), threshold=torch.full((5,), 1.0), output=True,
                                          **kw))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    return net


@pytest.mark.parametrize("reset,delay", [("zero", False), ("subtract", True), ("subtract", False)])
def test_snntorch_export_to_nir_to_snnc(reset, delay, tmp_path):
    """snnTorch model -> snnTorch's own export_to_nir -> .nir -> snnc (--convention snntorch, the
    reset the model was trained with) == the snnTorch model's forward: identical for the zero
    reset, snnTorch's default (subtract, reset_delay=True) and the immediate subtract (read as the
    IR's "subtract_snntorch": snnTorch tests the spike on v - thr * H(v_prev - thr), its "avoid
    double reset"; with these strong weights the plain "subtract" agreed 0.89)."""
    import contextlib
    import io
    import nir  # lazy: heavy
    import torch  # lazy: heavy
    from snntorch import utils as sutils  # lazy: heavy
    from snntorch.export_nir import export_to_nir  # lazy: heavy
    _quiet()
    net = _snntorch_net(reset, delay)
    with contextlib.redirect_stdout(io.StringIO()):
        g = export_to_nir(net, torch.zeros(1, 10), ignore_dims=[0])
    nir.write(str(tmp_path / "m.nir"), g)
    x = _spikes(np.random.default_rng(0), (10,), 100, 0.3, 3)
    sutils.reset(net)
    with torch.no_grad():
        want = np.stack([net(torch.from_numpy(x[..., t]))[0].numpy() for t in range(x.shape[-1])], -1)
    opts = {} if reset == "zero" else {"reset": reset, "reset_delay": delay}
    got = snnc.run(snnc.compile(import_nir(str(tmp_path / "m.nir"), convention="snntorch", **opts)), x,
                   backend="reference-float").output
    assert want.sum() > 20
    assert np.array_equal(got, want), f"agreement {np.mean(got == want):.5f}"


def test_primitives_against_nir_equations(tmp_path):
    """Linear, Scale, Delay, LIF (v_leak), Affine, LI read-out, Threshold and a flat recurrent IF,
    in one graph, against NIR's equations stepped by hand (forward Euler, dt = 1e-3): identical
    spikes, read-out v to 1e-12."""
    import nir  # lazy: heavy
    rng = np.random.default_rng(4)
    dt = 1e-3
    w1, s1, w2, b2, w3 = rng.normal(0, 2, (4, 3)), rng.uniform(0.5, 2, 4), rng.normal(0, 1, (2, 4)), \
        rng.normal(0, 0.2, 2), rng.normal(0, 1, (2, 4))
    wr = rng.normal(0, 0.5, (4, 4))
    tau, r, vl, th = np.full(4, 0.01), np.full(4, 3.0), np.full(4, 0.3), np.full(4, 1.0)
    nodes = {"input": nir.Input(np.array([3])), "lin": nir.Linear(w1), "scale": nir.Scale(s1),
             "delay": nir.Delay(np.full(4, 2 * dt)),
             "lif": nir.LIF(tau=tau, r=r, v_leak=vl, v_threshold=th, v_reset=np.zeros(4)),
             "aff": nir.Affine(w2, b2), "li": nir.LI(tau=np.full(2, 0.02), r=np.full(2, 2.0), v_leak=np.zeros(2)),
             "out": nir.Output(np.array([2])), "lin3": nir.Linear(w3), "thr": nir.Threshold(np.full(2, 0.5)),
             "out2": nir.Output(np.array([2])), "rec": nir.Linear(wr),
             "if": nir.IF(r=np.full(4, 1 / dt), v_threshold=np.full(4, 1.5), v_reset=np.zeros(4)),
             "out3": nir.Output(np.array([4]))}
    edges = [("input", "lin"), ("lin", "scale"), ("scale", "delay"), ("delay", "lif"), ("lif", "aff"),
             ("aff", "li"), ("li", "out"), ("lif", "lin3"), ("lin3", "thr"), ("thr", "out2"),
             ("lif", "if"), ("if", "rec"), ("rec", "if"), ("if", "out3")]
    nir.write(str(tmp_path / "p.nir"), nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    x = _spikes(rng, (3,), 200, 0.4, 1)
    g = snnc.compile(import_nir(str(tmp_path / "p.nir"), dt=dt))
    res = snnc.run(g, x, backend="reference-float")
    # NIR's equations, stepped by hand
    T = x.shape[-1]
    v, vli, vif, s_if = np.zeros(4), np.zeros(2), np.zeros(4), np.zeros(4)
    want_li, want_thr, want_if = np.zeros((2, T)), np.zeros((2, T)), np.zeros((4, T))
    for t in range(T):
        a = s1 * (w1 @ x[0, :, t - 2]) if t >= 2 else np.zeros(4)
        v = v + dt / tau * (vl - v + r * a)
        s = (v > th).astype(float)
        v[s > 0] = 0
        vli = vli + dt / 0.02 * (-vli + 2.0 * (w2 @ s + b2))
        want_li[:, t] = vli
        want_thr[:, t] = (w3 @ s) > 0.5
        vif = vif + dt / dt * (s + wr @ s_if)           # IF: dv/dt = r I, r = 1/dt; back edge: s_if[t-1]
        s_if = (vif > 1.5).astype(float)
        vif[s_if > 0] = 0
        want_if[:, t] = s_if
    assert np.max(np.abs(res.outputs["out"][0] - want_li)) < 1e-12
    assert np.array_equal(res.outputs["out2"][0], want_thr) and want_thr.sum() > 0
    assert np.array_equal(res.outputs["out3"][0], want_if) and want_if.sum() > 0
