"""``--convention sinabs | spyx | spyx-2023 | spikingjelly`` against what each library computes.

Sinabs, Spyx (JAX) and SpikingJelly (Python >= 3.11) cannot be installed here, so the oracles are
(a) runs the libraries recorded themselves, shipped with the NIR paper (tests/data/nir/README.md:
``lif_sinabs.csv``, ``lif_spyx.csv``), and (b) numpy loops written from each library's source,
cited at each loop, independent of snnc's engines. Rockpool's recorded run is in tests/test_nir.py.
"""
import os
import warnings

import numpy as np
import pytest

from snnc.backends.reference import _Sim, run_reference
from snnc.compiler.fold import fold_pooling
from snnc.compiler.ir import CubaLIF, Output
from snnc.errors import SnncError
from snnc.frontends.nir_import import import_nir

DATA = os.path.join(os.path.dirname(__file__), "data", "nir")


def nir_file(name):
    return os.path.join(DATA, name)


def _read(path):
    import nir  # lazy: heavy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nir.read(path)


def _trace(graph, x, pop, out="output"):
    """v of ``pop`` and the output at every step (reference float engine, one sample)."""
    sim = _Sim(graph, "float", 1)
    v, s = np.zeros(x.size), np.zeros(x.size)
    for t in range(x.size):
        o = sim.step(t, {"input": np.array([[x[t]]])})
        v[t] = sim.state[pop]["v"].reshape(-1)[0]
        s[t] = o[out].reshape(-1)[0]
    return v, s


def _with_population_outputs(ir, names):
    for k in names:
        ir.add(f"{k}.out", Output(ir.nodes[k].shape), k)
    return ir


# ----------------------------------------------------------------------------- recorded runs
def test_lif_sinabs_recorded_run():
    """The NIR paper's Sinabs run of lif_norse.nir (paper/01_lif/lif_sinabs.ipynb: Sinabs'
    from_nir, tau_mem /= dt, the input spikes scaled by 0.04 by hand) == ``--convention sinabs
    --dt 1e-4`` (exact decay, unit input gain: LIFSqueeze's norm_input=False; subtract reset,
    v >= threshold) on the recorded input: identical spikes, v to float32 precision, no lag."""
    rec = np.loadtxt(nir_file("lif_sinabs.csv"), delimiter=",")
    assert set(np.unique(rec[:, 0]).tolist()) == {0.0, np.float32(0.04).item()}
    g = import_nir(nir_file("lif_norse.nir"), convention="sinabs", dt=1e-4, spike_compare=">=")
    assert g.nodes["0"].weight[0, 0] == 1.0                       # norm_input=False: no (1 - alpha)
    v, s = _trace(g, rec[:, 0], "1")
    assert np.array_equal(s, rec[:, 2]) and np.nonzero(s)[0].tolist() == [450, 500, 710, 760]
    assert np.max(np.abs(v - rec[:, 1])) < 1e-7


def test_lif_spyx_recorded_run():
    """The NIR paper's Spyx run of lif_norse.nir (paper/01_lif/lif_spyx.ipynb, Spyx of Nov 2023:
    its from_nir scales the Linear into a LIF by dt/tau) == ``--convention spyx-2023 --dt 1e-4``:
    identical spikes (emitted one step after the crossing: 461, 511, 711, 761) and v (Spyx's V =
    beta V + x - thr s, the subtraction one step late) to float32 precision."""
    rec = np.loadtxt(nir_file("lif_spyx.csv"), delimiter=",")
    g = import_nir(nir_file("lif_norse.nir"), convention="spyx-2023", dt=1e-4)
    v, s = _trace(g, rec[:, 0], "1")
    assert np.array_equal(s, rec[:, 2]) and np.nonzero(s)[0].tolist() == [461, 511, 711, 761]
    assert np.max(np.abs(v - rec[:, 1])) < 1e-7
    # Spyx 1.0 (weights as written) reads the same file with unit gain: 25x the input, another run
    g1 = import_nir(nir_file("lif_norse.nir"), convention="spyx", dt=1e-4)
    assert g1.nodes["0"].weight[0, 0] == 1.0 and _trace(g1, rec[:, 0], "1")[1].sum() > 100


# ----------------------------------------------------------------------------- Sinabs
def sinabs_forward(graph, x, multi=True, floor=True):
    """cnn_sinabs.nir as Sinabs 3.1 runs it (sinabs/nir.py ``_import_sinabs_module`` at 904eb89):
    Conv2d/Affine as torch layers, ``SumPool2d`` a sum, and every IF an ``IAFSqueeze(spike_threshold
    = v_th, min_v_mem = -v_th)`` whose step (layers/functional/lif.py ``lif_forward_single``,
    activation ``MultiSpike``, ``MembraneSubtract``) is: v += I; s = (v > 0) trunc(v / thr);
    v -= s thr; v = max(v, min_v_mem). ``multi=False``: Sinabs' ``SingleSpike`` (s = [v >= thr]);
    ``floor=False``: ``min_v_mem=None``. float32 as Sinabs. Returns {IF node: (N, *shape, T)}."""
    import torch  # lazy: heavy
    import torch.nn.functional as F  # lazy: heavy
    succ = dict(graph.edges)
    order, n = [], "input"
    while succ.get(n, "output") != "output":
        n = succ[n]
        order.append(n)
    nodes = graph.nodes
    v, rec = {}, {k: [] for k in order if type(nodes[k]).__name__ == "IF"}
    t32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        for t in range(x.shape[-1]):
            h = t32(x[..., t])
            for k in order:
                node, typ = nodes[k], type(nodes[k]).__name__
                if typ == "Conv2d":
                    h = F.conv2d(h, t32(node.weight), t32(node.bias), tuple(int(s) for s in node.stride),
                                 tuple(int(p) for p in node.padding), tuple(int(d) for d in node.dilation),
                                 int(node.groups))
                elif typ == "SumPool2d":
                    h = F.lp_pool2d(h, 1, tuple(int(s) for s in node.kernel_size),
                                    tuple(int(s) for s in node.stride))
                elif typ == "Flatten":
                    h = h.reshape(h.shape[0], -1)
                elif typ == "Affine":
                    h = h @ t32(node.weight).T + t32(node.bias)
                elif typ == "IF":
                    thr = t32(node.v_threshold)
                    vk = v.get(k, torch.zeros_like(h)) + h
                    if multi:
                        s = (vk > 0) * torch.div(vk, thr, rounding_mode="trunc")
                    else:
                        s = (vk - thr >= 0).float()
                    vk = vk - s * thr
                    v[k] = torch.nn.functional.relu(vk + thr) - thr if floor else vk   # min_v_mem = -thr
                    h = s
                    rec[k].append(s.numpy())
                else:
                    raise AssertionError(typ)
    return {k: np.stack(r, -1) for k, r in rec.items()}


def _cnn_sinabs_agreement(x, **kw):
    g = _read(nir_file("cnn_sinabs.nir"))
    want = sinabs_forward(g, x, **kw)
    ir = import_nir(nir_file("cnn_sinabs.nir"), convention="sinabs", spike_compare=">=")
    pops = [k for k in want if k in ir.nodes]
    assert len(pops) == 5
    # the engines read population -> synapse -> population: fold the pooling into the next synapse
    res = run_reference(fold_pooling(_with_population_outputs(ir, pops)), x, "float")
    agree = {}
    for k in pops:
        got = res.outputs[f"{k}.out"].reshape(want[k].shape)
        agree[k] = (float(np.mean(got == want[k])), int(want[k].sum()), int(got.sum()), int(want[k].max()))
    return agree


@pytest.mark.parametrize("p", [0.01, 0.08])
def test_cnn_sinabs_against_sinabs_forward(p):
    """cnn_sinabs.nir (the Sinabs export of the NIR paper's CNN) under ``--convention sinabs``
    (IF: v += I, subtract reset, v >= threshold) against Sinabs' own forward (numpy loop above) on
    N-MNIST-like input spikes (density ``p``; N-MNIST's 1 ms frames are about 0.006):

    - with Sinabs' ``SingleSpike`` and no floor on v: identical, every spike of every layer
      (conv, pooling, flatten, dense, subtract reset, '>=' all as Sinabs computes them);
    - with what Sinabs' from_nir builds (``MultiSpike``: several spikes per step; ``min_v_mem =
      -threshold``): snnc cannot emit two spikes in one step nor floor v, and differs; the
      measured agreement is printed (docs/nir.md has the numbers)."""
    x = (np.random.default_rng(0).random((2, 2, 34, 34, 30)) < p).astype(np.float32)
    exact = _cnn_sinabs_agreement(x, multi=False, floor=False)
    assert all(a[0] == 1.0 for a in exact.values()), exact
    assert exact["1"][1] > 100 and exact["12"][1] > 0, exact
    agree = _cnn_sinabs_agreement(x)
    print(f"p={p}: per layer (agreement, Sinabs spikes, snnc spikes, Sinabs' most spikes in a step):", agree)
    assert all(a[0] > 0.75 for a in agree.values()), agree


def test_sinabs_refusals(tmp_path):
    import nir  # lazy: heavy
    with pytest.raises(SnncError, match="reads no CubaLIF"):
        import_nir(nir_file("braille_noDelay_noBias_subtract.nir"), convention="sinabs")
    with pytest.raises(SnncError, match=r"node 'lif1' \(LIF\): v_leak"):
        import_nir(nir_file("two_lif_neurons.nir"), convention="sinabs")
    g = _read(nir_file("lif_norse.nir"))
    g.nodes["1"].r = np.full(1, 2.0, np.float32)
    nir.write(str(tmp_path / "r2.nir"), g)
    with pytest.raises(SnncError, match="Sinabs writes r = 1"):
        import_nir(str(tmp_path / "r2.nir"), convention="sinabs")


# ----------------------------------------------------------------------------- Spyx 1.0
def spyx_forward(graph_path, x, dt):
    """The braille graph as Spyx 1.0 runs it (kmheckel/spyx 38374e9, src/spyx/nir.py
    ``_build_model``: Linear kernel = W.T, the lif1 <-> w_rec cycle an ``RCuBaLIF`` with
    recurrent_w = W_rec.T (its bias dropped), alpha = 1 - dt/tau_syn, beta = 1 - dt/tau_mem;
    src/spyx/nn.py ``CuBaLIF``/``RCuBaLIF.__call__``: s = H(V - thr) with H(x) = [x > 0]
    (axn.heaviside), V -= s thr, I = alpha I + x (+ s @ recurrent_w), V = beta V + I), float32.
    Returns (output spikes, hidden spikes), (N, n, T)."""
    import nir  # lazy: heavy
    g = _read(graph_path)
    sub = g.nodes["lif1"] if isinstance(g.nodes.get("lif1"), nir.NIRGraph) else None
    lif1 = sub.nodes["lif1"] if sub else g.nodes["lif1.lif"]
    w_rec = (sub.nodes["lin"] if sub else g.nodes["lif1.w_rec"]).weight
    lif2 = g.nodes["lif2"]
    f32 = np.float32
    W1, W2, Wr = (np.asarray(w, f32) for w in (g.nodes["fc1"].weight, g.nodes["fc2"].weight, w_rec))

    def ab(node):
        return (np.clip(f32(1) - f32(dt) / np.asarray(node.tau_syn, f32), 0, 1),
                np.clip(f32(1) - f32(dt) / np.asarray(node.tau_mem, f32), 0, 1),
                np.asarray(node.v_threshold, f32))
    (a1, b1, th1), (a2, b2, th2) = ab(lif1), ab(lif2)
    n = x.shape[0]
    V1, I1 = np.zeros((n, W1.shape[0]), f32), np.zeros((n, W1.shape[0]), f32)
    V2, I2 = np.zeros((n, W2.shape[0]), f32), np.zeros((n, W2.shape[0]), f32)
    out, hid = [], []
    for t in range(x.shape[-1]):
        s1 = (V1 - th1 > 0).astype(f32)
        V1 = V1 - s1 * th1
        I1 = a1 * I1 + x[..., t].astype(f32) @ W1.T + s1 @ Wr.T
        V1 = b1 * V1 + I1
        s2 = (V2 - th2 > 0).astype(f32)
        V2 = V2 - s2 * th2
        I2 = a2 * I2 + s1 @ W2.T
        V2 = b2 * V2 + I2
        out.append(s2)
        hid.append(s1)
    return np.stack(out, -1), np.stack(hid, -1)


@pytest.mark.parametrize("name,hidden", [("braille_noDelay_noBias_subtract.nir", "lif1.lif"),
                                         ("spyx_braille_noDelay_noBias_subtract_subgraph.nir", "lif1.lif1")])
def test_spyx_braille_against_spyx_forward(name, hidden):
    """The paper's braille RNN (flat, and Spyx's own nested file) under ``--convention spyx --dt
    1e-4`` == Spyx 1.0's forward (numpy loop above): every output spike, and the hidden layer's
    spikes one step before Spyx emits them (Spyx emits a crossing one step late)."""
    rng = np.random.default_rng(1)
    x = (rng.random((4, 12, 256)) < 0.2).astype(np.float32)
    want, want_h = spyx_forward(nir_file(name), x, 1e-4)
    ir = import_nir(nir_file(name), convention="spyx", dt=1e-4)
    h = ir.nodes[hidden]
    assert isinstance(h, CubaLIF) and h.reset == "subtract" and not h.reset_delay      # immediate (CubaLIF)
    res = run_reference(_with_population_outputs(ir, [hidden]), x, "float")
    got, got_h = res.output.reshape(want.shape), res.outputs[f"{hidden}.out"].reshape(want_h.shape)
    assert want.sum() > 100 and want_h.sum() > 200, (want.sum(), want_h.sum())
    assert np.array_equal(got, want), f"agreement {np.mean(got == want):.5f}"
    assert np.array_equal(got_h[..., :-1], want_h[..., 1:]) and not want_h[..., 0].any()


def test_spyx_refusals():
    with pytest.raises(SnncError, match="recurrent synapse 'lif1.w_rec'.*has a bias, which Spyx"):
        import_nir(nir_file("braille_noDelay_bias_zero.nir"), convention="spyx", dt=1e-4)
    with pytest.raises(SnncError, match="unstable"):                    # Spyx's dt = 1 > tau
        import_nir(nir_file("braille_noDelay_noBias_subtract.nir"), convention="spyx")
    with pytest.raises(SnncError, match="v_leak"):
        import_nir(nir_file("two_lif_neurons.nir"), convention="spyx", dt=1e-4)
    with pytest.raises(SnncError, match="spyx-2023.*LIF only"):
        import_nir(nir_file("braille_noDelay_noBias_subtract.nir"), convention="spyx-2023", dt=1e-4)


# ----------------------------------------------------------------------------- SpikingJelly
def _spikingjelly_graph(path, dt=1e-4):
    """A graph as SpikingJelly 2.0's to_nir writes it (nir_exchange/to_nir.py ``map_lif``/``map_if``
    at afb13226): LIF tau = tau_steps dt, r = 1 (decay_input) or tau_steps, v_leak = v_reset = 0;
    IF r = 1/dt; one value per layer."""
    import nir  # lazy: heavy
    rng = np.random.default_rng(2)
    full = lambda n, v: np.full(n, v, np.float32)  # noqa: E731
    nodes = {
        "input": nir.Input(np.array([6])),
        "fc1": nir.Affine(rng.normal(0.6, 0.8, (8, 6)).astype(np.float32), rng.normal(0, 0.1, 8).astype(np.float32)),
        "lif1": nir.LIF(tau=full(8, 4 * dt), r=full(8, 1.0), v_leak=full(8, 0), v_threshold=full(8, 0.5),
                        v_reset=full(8, 0)),
        "fc2": nir.Linear(rng.normal(0.3, 0.5, (5, 8)).astype(np.float32)),
        "lif2": nir.LIF(tau=full(5, 3 * dt), r=full(5, 3.0), v_leak=full(5, 0), v_threshold=full(5, 1.0),
                        v_reset=full(5, 0)),
        "fc3": nir.Linear(rng.normal(0.4, 0.5, (4, 5)).astype(np.float32)),
        "if3": nir.IF(r=full(4, 1 / dt), v_threshold=full(4, 1.0), v_reset=full(4, 0)),
        "output": nir.Output(np.array([4])),
    }
    chain = list(nodes)
    nir.write(path, nir.NIRGraph(nodes, list(zip(chain[:-1], chain[1:]))))
    return nodes


def spikingjelly_forward(nodes, x, dt=1e-4):
    """SpikingJelly 2.0's from_nir modules (nir_exchange/from_nir.py at afb13226: LIFNode(tau =
    tau/dt, decay_input = r == 1), IFNode) stepped as neuron/lif.py ``neuronal_charge`` (decay_input:
    v += (v_reset - v + x) / tau; else v += (v_reset - v) / tau + x; IF: v += x), base_node.py
    ``neuronal_fire`` (heaviside(v - thr), surrogate.heaviside: x >= 0) and the hard reset v =
    v_reset at a spike; float32. Returns {neuron: (N, n, T)}."""
    f32 = np.float32
    v, rec = {}, {k: [] for k in ("lif1", "lif2", "if3")}
    for t in range(x.shape[-1]):
        h = x[..., t].astype(f32)
        for k, node in nodes.items():
            typ = type(node).__name__
            if typ == "Affine":
                h = h @ node.weight.T + node.bias
            elif typ == "Linear":
                h = h @ node.weight.T
            elif typ in ("LIF", "IF"):
                vk = v.get(k, np.zeros_like(h))
                if typ == "IF":
                    vk = vk + h
                else:
                    tau = f32(node.tau[0] / dt)
                    vk = vk + (f32(0) - vk + h) / tau if node.r[0] == 1 else vk + (f32(0) - vk) / tau + h
                s = (vk - node.v_threshold >= 0).astype(f32)
                v[k] = s * f32(0) + (1 - s) * vk
                h = s
                rec[k].append(s)
    return {k: np.stack(r, -1) for k, r in rec.items()}


def test_spikingjelly_against_spikingjelly_forward(tmp_path):
    """A LIF (decay_input), LIF (no decay_input), IF graph as SpikingJelly writes it, under
    ``--convention spikingjelly`` (spike_compare '>=') == SpikingJelly's own forward (numpy loop
    above), every spike of every layer."""
    path = str(tmp_path / "sj.nir")
    nodes = _spikingjelly_graph(path)
    x = (np.random.default_rng(3).random((3, 6, 200)) < 0.3).astype(np.float32)
    want = spikingjelly_forward(nodes, x)
    ir = import_nir(path, convention="spikingjelly", spike_compare=">=")
    res = run_reference(_with_population_outputs(ir, list(want)), x, "float")
    for k, w in want.items():
        got = res.outputs[f"{k}.out"].reshape(w.shape)
        assert w.sum() > 30, (k, w.sum())
        assert np.array_equal(got, w), f"{k}: agreement {np.mean(got == w):.5f}"


def test_spikingjelly_refusals(tmp_path):
    import nir  # lazy: heavy
    with pytest.raises(SnncError, match="reads no CubaLIF"):
        import_nir(nir_file("braille_noDelay_noBias_subtract.nir"), convention="spikingjelly")
    path = str(tmp_path / "sj.nir")
    nodes = _spikingjelly_graph(path)
    nodes["lif1"].tau = np.linspace(2e-4, 6e-4, 8).astype(np.float32)
    chain = list(nodes)
    nir.write(path, nir.NIRGraph(nodes, list(zip(chain[:-1], chain[1:]))))
    with pytest.raises(SnncError, match=r"node 'lif1' \(LIF\): per-neuron tau"):
        import_nir(path, convention="spikingjelly")
    with pytest.raises(SnncError, match="IF with r = 1/dt"):          # the graph's IF at another dt
        import_nir(path, convention="spikingjelly", dt=1e-3)


# ----------------------------------------------------------------------------- Rockpool
def _rockpool_graph(path, dt=1e-3):
    """Linear -> recurrent CubaLIF (LIFTorch with w_rec) -> Linear -> LIF (LIFNeuronTorch), written as
    Rockpool 3.1's to_nir writes them (rockpool/nn/modules/torch/nir.py at 42cee1c9: r = tau_mem
    exp(-dt/tau_mem)/dt, w_in 1, v_leak 0)."""
    import nir  # lazy: heavy
    rng = np.random.default_rng(4)
    f = np.float32
    tau_syn, tau_mem = rng.uniform(3e-3, 2e-2, 10).astype(f), rng.uniform(5e-3, 3e-2, 10).astype(f)
    tau2 = rng.uniform(5e-3, 3e-2, 4).astype(f)
    nodes = {
        "input": nir.Input(np.array([6])),
        "fc1": nir.Linear(rng.normal(0.01, 0.01, (10, 6)).astype(f)),
        "lif1": nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=(tau_mem * np.exp(-dt / tau_mem) / dt).astype(f),
                            v_leak=np.zeros(10, f), v_threshold=np.full(10, 1.0, f), w_in=np.ones(10, f)),
        "w_rec": nir.Linear(rng.normal(0.0, 0.01, (10, 10)).astype(f)),
        "fc2": nir.Linear(rng.normal(0.05, 0.05, (4, 10)).astype(f)),
        "lif2": nir.LIF(tau=tau2, r=(tau2 * np.exp(-dt / tau2) / dt).astype(f), v_leak=np.zeros(4, f),
                        v_threshold=np.full(4, 0.8, f)),
        "output": nir.Output(np.array([4])),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "w_rec"), ("w_rec", "lif1"), ("lif1", "fc2"),
             ("fc2", "lif2"), ("lif2", "output")]
    nir.write(path, nir.NIRGraph(nodes, edges))
    return nodes


def rockpool_forward(nodes, x, dt=1e-3):
    """Rockpool 3.1's evolve (lif_torch.py ``LIFTorch.evolve``: isyn += x + spikes[t-1] @ w_rec;
    vmem *= alpha; isyn *= beta; vmem += isyn + bias; spikes = StepPWL: [v >= thr] floor(v/thr);
    vmem -= spikes thr. lif_neuron_torch.py ``LIFNeuronTorch.evolve``: vmem *= alpha; vmem += x +
    bias; the same spikes and reset), alpha = exp(-dt/tau_mem), beta = exp(-dt/tau_syn), float32.
    Returns {population: (N, n, T)}."""
    f = np.float32
    l1, l2 = nodes["lif1"], nodes["lif2"]
    a1, b1, a2 = (np.exp(-f(dt) / np.asarray(t, f)) for t in (l1.tau_mem, l1.tau_syn, l2.tau))
    W1, Wr, W2 = (np.asarray(nodes[k].weight, f) for k in ("fc1", "w_rec", "fc2"))
    n = x.shape[0]
    v1, i1, s1 = (np.zeros((n, 10), f) for _ in range(3))
    v2 = np.zeros((n, 4), f)
    rec = {"lif1": [], "lif2": []}
    for t in range(x.shape[-1]):
        i1 = i1 + x[..., t].astype(f) @ W1.T + s1 @ Wr.T
        v1 = v1 * a1
        i1 = i1 * b1
        v1 = v1 + i1 + l1.v_leak
        s1 = (v1 >= l1.v_threshold) * np.floor(v1 / l1.v_threshold)
        v1 = v1 - s1 * l1.v_threshold
        v2 = v2 * a2 + s1 @ W2.T + l2.v_leak
        s2 = (v2 >= l2.v_threshold) * np.floor(v2 / l2.v_threshold)
        v2 = v2 - s2 * l2.v_threshold
        rec["lif1"].append(s1)
        rec["lif2"].append(s2)
    return {k: np.stack(r, -1) for k, r in rec.items()}


def test_rockpool_against_rockpool_forward(tmp_path):
    """A recurrent CubaLIF and a LIF as Rockpool writes them, under ``--convention rockpool --dt
    1e-3`` (spike_compare '>=') == Rockpool's own evolve (numpy loop above; input gain beta into
    the synaptic current, recurrence one step late), every spike of both layers, where Rockpool
    emits at most one spike per step (checked)."""
    path = str(tmp_path / "rp.nir")
    nodes = _rockpool_graph(path)
    x = (np.random.default_rng(5).random((3, 6, 300)) < 0.3).astype(np.float32)
    want = rockpool_forward(nodes, x)
    assert max(w.max() for w in want.values()) == 1 and all(w.sum() > 50 for w in want.values())
    ir = import_nir(path, convention="rockpool", dt=1e-3, spike_compare=">=")
    res = run_reference(_with_population_outputs(ir, list(want)), x, "float")
    for k, w in want.items():
        got = res.outputs[f"{k}.out"].reshape(w.shape)
        assert np.array_equal(got, w), f"{k}: agreement {np.mean(got == w):.5f}"
    with pytest.raises(SnncError, match="Rockpool writes r"):          # read at another dt: refused
        import_nir(path, convention="rockpool", dt=1e-4)


def test_rockpool_test_graph_refused_in_one_line():
    """Rockpool's own test graph (tests/tests_default/nir_graphs/braille.nir) has a nested Input of
    shape [12] feeding 38 neurons: nir 1.0.8 cannot read it, and snnc says so naming the file."""
    with pytest.raises(SnncError, match=r"rockpool_braille.nir: nir 1.0.8 cannot read it: .*type mismatch"):
        import_nir(nir_file("rockpool_braille.nir"), convention="rockpool", dt=1e-4)


def test_import_notes_printed_by_compile_and_info(cli, tmp_path):
    """What the NIR import assumed (here Sinabs' multi-spike neurons) is printed by compile and info."""
    src = os.path.join(os.path.dirname(__file__), "data", "nir", "cnn_sinabs.nir")
    out = str(tmp_path / "cnn.snnc")
    rc, stdout, err = cli("compile", src, "--convention", "sinabs", "-o", out)
    assert rc == 0, err
    assert "note: Sinabs' from_nir emits trunc(v/threshold) spikes per step" in stdout
    rc, stdout, err = cli("info", out)
    assert rc == 0, err
    assert "import notes" in stdout and "MultiSpike" in stdout
