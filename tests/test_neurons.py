"""Neurons Loihi's CUBA lacks (issue 12, part 5): reset by subtraction (immediate and one step
late), no reset, IF, bias-driven spiking, and the non-spiking CubaLI read-out, in the reference
engines (float, fixed, fast and spec), the quantization pass, the ONNX dialect (onnxruntime) and
Lava (fixed_pt bit-exact with the reference; floating_pt against reference float).

The expected arrays are computed by hand in the comments (values are dyadic, so float and
fixed point agree exactly)."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler import artifact
from snnc.compiler.fixed import FixedCubaLI, state_scale
from snnc.compiler.ir import CubaLI, CubaLIF, Dense, Graph, Input, Output
from snnc.compiler.quantize import quantize
from snnc.backends.reference import run_reference
from snnc.backends.reference_spec import run_reference_spec
from snnc.errors import SnncError
from snnc.frontends import onnx_ops as ops
from snnc.frontends.onnx_import import import_onnx
from snnc.backends.onnx_runtime import run_onnxruntime

T = 8


def _lif_graph(weight, **neuron) -> Graph:
    """Input (n,) -> Dense(diag(weight)) -> CubaLIF -> Output."""
    w = np.diag(np.asarray(weight, dtype=np.float64))
    g = Graph()
    g.add("x", Input((len(w),)))
    g.add("syn", Dense(w), "x")
    kw = dict(current_decay=1.0, voltage_decay=0.0, threshold=1.0)
    kw.update(neuron)
    g.add("pop", CubaLIF((len(w),), **kw), "syn")
    g.add("out", Output((len(w),)), "pop")
    return g


def _ones(n=1, steps=T):
    return np.ones((1, n, steps))


def _all_engines(g: Graph, x):
    """Spikes (or read-out values) of every reference engine: float/fixed x fast/spec."""
    q = quantize(g)
    return {"float": run_reference(g, x, "float").output, "float-spec": run_reference_spec(g, x, "float").output,
            "fixed": run_reference(q, x, "fixed").output, "fixed-spec": run_reference_spec(q, x, "fixed").output}


def _assert_all(g: Graph, x, expected):
    for engine, out in _all_engines(g, x).items():
        assert np.array_equal(out[0], np.asarray(expected, dtype=np.float64)), (engine, out[0].tolist())


# ------------------------------------------------------------------ reset modes, hand-computed
# One neuron, LIF with beta = 0.5 (voltage_decay 0.5, no current state), threshold 1, input 0.75
# on every step.
#   zero:      v = .75, 1.125 (spike -> 0), .75, 1.125 ... -> 0 1 0 1 0 1 0 1
#   subtract:  v = .75, 1.125 (s, -> .125), .8125, 1.15625 (s, -> .15625), .828125,
#              1.1640625 (s), .83203125, 1.166015625 (s)                       -> 0 1 0 1 0 1 0 1
#   subtract, reset_delay (v[t] = .5 v[t-1] + .75 - s[t-1]):
#              .75, 1.125 (s), .3125, .90625, 1.203125 (s), .3515625, .92578125,
#              1.212890625 (s)                                                  -> 0 1 0 0 1 0 0 1
#   none:      .75, 1.125, 1.3125, 1.40625, ... (all above 1 from t=1)          -> 0 1 1 1 1 1 1 1
LIF_CASES = {
    "zero": (dict(reset="zero"), [0, 1, 0, 1, 0, 1, 0, 1]),
    "zero-delay": (dict(reset="zero", reset_delay=True), [0, 1, 0, 1, 0, 1, 0, 1]),
    "subtract": (dict(reset="subtract"), [0, 1, 0, 1, 0, 1, 0, 1]),
    "subtract-delay": (dict(reset="subtract", reset_delay=True), [0, 1, 0, 0, 1, 0, 0, 1]),
    "none": (dict(reset="none"), [0, 1, 1, 1, 1, 1, 1, 1]),
    "subtract-snntorch": (dict(reset="subtract_snntorch"), [0, 1, 0, 1, 0, 1, 0, 1]),   # v <= 1 after each reset
}


@pytest.mark.parametrize("case", sorted(LIF_CASES))
def test_reset_modes_hand_computed(case):
    kw, expected = LIF_CASES[case]
    _assert_all(_lif_graph([0.75], voltage_decay=0.5, **kw), _ones(), [expected])


def test_subtract_keeps_the_excess_zero_drops_it():
    """IF (no leak), input 0.625 per step, threshold 1.
    subtract: v = .625, 1.25 (s, .25), .875, 1.5 (s, .5), 1.125 (s, .125), .75, 1.375 (s, .375),
    1.0 (not > 1)  -> 0 1 0 1 1 0 1 0.  zero: .625, 1.25 (s, 0), .625, 1.25 (s) -> 0 1 0 1 0 1 0 1.
    With no leak the delayed subtraction gives the same spikes as the immediate one."""
    _assert_all(_lif_graph([0.625, 0.625], reset="subtract"), _ones(2), [[0, 1, 0, 1, 1, 0, 1, 0]] * 2)
    _assert_all(_lif_graph([0.625], reset="subtract", reset_delay=True), _ones(), [[0, 1, 0, 1, 1, 0, 1, 0]])
    _assert_all(_lif_graph([0.625], reset="zero"), _ones(), [[0, 1, 0, 1, 0, 1, 0, 1]])


def test_snntorch_immediate_subtract_hand_computed():
    """snnTorch 1.0 reset_delay=False ("subtract_snntorch"): IF, threshold 1, one input of 2.5 at
    t=0. snnTorch: t0 m = 2.5 (s), v = 1.5; t1 m = 1.5 - 1 H(1.5 - 1) = .5 (no spike), v = 1.5;
    and so on: v stays 1.5 and never fires again -> 1 0 0 0 0 0. The IR's "subtract": v = 2.5 (s,
    1.5), 1.5 (s, .5), .5 -> 1 1 0 0 0 0."""
    x = np.zeros((1, 1, 6))
    x[0, 0, 0] = 1
    _assert_all(_lif_graph([2.5], reset="subtract_snntorch"), x, [[1, 0, 0, 0, 0, 0]])
    _assert_all(_lif_graph([2.5], reset="subtract"), x, [[1, 1, 0, 0, 0, 0]])
    # with v <= threshold after every subtraction the two rules agree (LIF_CASES["subtract"])
    _assert_all(_lif_graph([0.75], voltage_decay=0.5, reset="subtract_snntorch"), _ones(), [[0, 1, 0, 1, 0, 1, 0, 1]])


def test_integrate_and_fire_with_current():
    """IF neuron with a synaptic current: current_decay 0.5, voltage_decay 0 (no leak), weight
    0.5, one input spike at t=0 only, threshold 0.875, reset subtract.
    u = .5, .25, .125, .0625 ...; v = .5, .75, .875 (not > .875), .9375 (s, -> .0625), .09375 ..."""
    g = _lif_graph([0.5], current_decay=0.5, voltage_decay=0.0, threshold=0.875, reset="subtract")
    x = np.zeros((1, 1, 6))
    x[0, 0, 0] = 1
    _assert_all(g, x, [[0, 0, 0, 1, 0, 0]])


def test_bias_driven_population_spikes_without_input():
    """No incoming edge, bias 0.25 per step, IF, threshold 1.
    zero: v = .25 .5 .75 1.0 1.25 (s, 0) .25 .5 .75 1.0 1.25 (s)  -> spikes at t = 4, 9.
    subtract: 1.25 (s, .25) .5 .75 1.0 1.25 (s) -> spikes at t = 4, 8."""
    for reset, spikes in (("zero", (4, 9)), ("subtract", (4, 8))):
        g = Graph()
        g.add("x", Input((1,)))                                   # the graph's (unused) input
        g.add("pop", CubaLIF((2,), 1.0, 0.0, 1.0, bias=0.25, reset=reset))
        g.add("out", Output((2,)), "pop")
        expected = np.zeros((2, 12))
        expected[:, list(spikes)] = 1
        _assert_all(g, np.zeros((1, 1, 12)), expected)


# ------------------------------------------------------------------ CubaLI read-out
def _li_graph(**li) -> Graph:
    """Input (1,) -> Dense([[1], [-0.5]]) -> CubaLI (2,) -> Output."""
    g = Graph()
    g.add("x", Input((1,)))
    g.add("syn", Dense(np.array([[1.0], [-0.5]])), "x")
    kw = dict(current_decay=0.5, voltage_decay=0.25)
    kw.update(li)
    g.add("li", CubaLI((2,), **kw), "syn")
    g.add("out", Output((2,)), "li")
    return g


# Input spikes at t = 0 and t = 2; u = .5 u + x; v = .75 v + u (neuron 0, weight 1):
#   t0: u 1, v 1; t1: u .5, v 1.25; t2: u 1.25, v 2.1875; t3: u .625, v 2.265625;
#   t4: u .3125, v 2.01171875.  Neuron 1 (weight -0.5) is -0.5 times neuron 0.
LI_V0 = [1.0, 1.25, 2.1875, 2.265625, 2.01171875]
LI_X = np.array([[[1, 0, 1, 0, 0]]], dtype=np.float64)


def test_leaky_integrator_hand_computed():
    expected = [LI_V0, [-0.5 * v for v in LI_V0]]
    _assert_all(_li_graph(), LI_X, expected)


def test_leaky_integrator_bias_and_fixed_view():
    """LI (current_decay 1) with bias 0.25: v = .75 v + x + .25 -> 1.25, 1.1875, 2.140625."""
    g = _li_graph(current_decay=1.0, bias=0.25)
    x = np.array([[[1, 0, 1]]], dtype=np.float64)
    v0 = [1.25, 1.1875, 2.140625]
    v1 = [-0.25, 0.0625, -0.203125]       # .75 v - .5 x + .25
    _assert_all(g, x, [v0, v1])
    q = quantize(g)
    fx = q.fixed["li"]
    assert isinstance(fx, FixedCubaLI)
    assert (fx.decay_u, fx.decay_v, int(fx.bias_mant) << fx.bias_exp) == (4096, 1024, 1024)
    assert fx.state_scale == state_scale(q, "li") == 4096 and "state_scale" not in q.metadata


def test_leaky_integrator_real_valued_scale_and_saturation():
    """state_scale 0: the pass picks S from the weights (w_scale * 2 * max|W| <= 254: 128 for
    max|W| = 1, S = 64 * 128); v saturates at (2**23 - 1) / S in fixed point."""
    g = _li_graph(current_decay=1.0, voltage_decay=0.0, state_scale=0)
    q = quantize(g)
    S = state_scale(q, "li")
    assert S == 64 * 128
    x = np.ones((1, 1, 1200))                                    # v = t + 1 (neuron 0)
    out = run_reference(q, x, "fixed").output[0, 0]
    assert out[1000] == 1001.0
    assert out[-1] == pytest.approx((2 ** 23 - 1) / S)         # saturated (1024 - 1/8192)
    assert np.array_equal(out, run_reference_spec(q, x, "fixed").output[0, 0])


def test_leaky_integrator_feeds_only_outputs():
    g = _li_graph()
    g.add("syn2", Dense(np.eye(2)), "li")
    g.add("pop2", CubaLIF((2,), 1.0, 0.0, 1.0), "syn2")
    g.add("out2", Output((2,)), "pop2")
    with pytest.raises(SnncError, match="leaky integrator 'li'.*may feed only an Output"):
        run_reference(g, LI_X, "float")


def test_refractory_needs_zero_reset():
    g = _lif_graph([0.5], reset="subtract", refractory=2)
    with pytest.raises(SnncError, match="population 'pop': a refractory period needs reset 'zero'"):
        quantize(g)


def test_artifact_round_trip(tmp_path):
    g = _li_graph()
    g.nodes["pop"] = CubaLIF((2,), 1.0, 0.5, 1.0, bias=0.25, reset="subtract", reset_delay=True)
    g = quantize(g)         # an artifact's fixed view is checked against its float view on load
    path = str(tmp_path / "m.snnc")
    artifact.save(g, path)
    h = artifact.load(path)
    assert isinstance(h.nodes["li"], CubaLI) and isinstance(h.fixed["li"], FixedCubaLI)
    assert h.nodes["pop"].reset_delay is True and h.nodes["pop"].reset == "subtract"


# ------------------------------------------------------------------ snnTorch as the oracle
@pytest.mark.parametrize("mechanism,delay", [("subtract", True), ("subtract", False), ("zero", True),
                                             ("zero", False), ("none", True)])
def test_snntorch_leaky_matches_reference_float(mechanism, delay):
    """snnTorch 1.0's own ``Leaky`` forward (float64) vs reference-float on the IR reading of
    ir.CubaLIF's docstring: identical spikes on 64 neurons x 60 steps of random input."""
    import torch  # lazy: heavy
    import snntorch as snn  # lazy: heavy
    rng = np.random.default_rng(1)
    x = np.round(rng.uniform(-0.2, 0.7, size=(1, 64, 60)) * 2 ** 16) / 2 ** 16   # on the graded grid
    lif = snn.Leaky(beta=0.8, threshold=1.0, reset_mechanism=mechanism, reset_delay=delay)
    mem, spikes = torch.zeros(1, 64, dtype=torch.float64), []
    with torch.no_grad():
        for t in range(x.shape[-1]):
            spk, mem = lif(torch.tensor(x[..., t]), mem)
            spikes.append(spk.numpy())
    want = np.stack(spikes, axis=-1)
    g = Graph()
    g.add("x", Input((64,), kind="graded", frac_bits=16))   # analog currents: a graded input
    g.add("syn", Dense(np.eye(64)), "x")
    g.add("pop", CubaLIF((64,), 1.0, 1 - 0.8, 1.0, reset=mechanism, reset_delay=delay, state_scale=0), "syn")
    g.add("out", Output((64,)), "pop")
    got = run_reference(g, x, "float").output
    assert want.sum() > 100
    assert np.array_equal(got, want)


def test_snntorch_synaptic_zero_delay_is_refractory_one():
    """snnTorch ``Synaptic(reset_mechanism="zero")`` (default reset_delay) zeroes the membrane of
    the step after a spike: ir.CubaLIF(reset "zero", refractory 1); subtract-delayed as in Leaky."""
    import torch  # lazy: heavy
    import snntorch as snn  # lazy: heavy
    rng = np.random.default_rng(2)
    x = np.round(rng.uniform(-0.2, 0.6, size=(1, 32, 60)) * 2 ** 16) / 2 ** 16   # on the graded grid
    for mechanism, ir_kw in (("zero", dict(reset="zero", refractory=1)),
                             ("subtract", dict(reset="subtract", reset_delay=True))):
        syn = snn.Synaptic(alpha=0.5, beta=0.75, threshold=1.0, reset_mechanism=mechanism)
        cur, mem = torch.zeros(1, 32, dtype=torch.float64), torch.zeros(1, 32, dtype=torch.float64)
        spikes = []
        with torch.no_grad():
            for t in range(x.shape[-1]):
                spk, cur, mem = syn(torch.tensor(x[..., t]), cur, mem)
                spikes.append(spk.numpy())
        g = Graph()
        g.add("x", Input((32,), kind="graded", frac_bits=16))
        g.add("syn", Dense(np.eye(32)), "x")
        g.add("pop", CubaLIF((32,), 0.5, 0.25, 1.0, state_scale=0, **ir_kw), "syn")
        g.add("out", Output((32,)), "pop")
        want = np.stack(spikes, axis=-1)
        assert want.sum() > 50
        assert np.array_equal(run_reference(g, x, "float").output, want), mechanism


# ------------------------------------------------------------------ ONNX dialect (onnxruntime)
def _onnx_model(path, n_in, weight, neuron_op, attrs, li=None):
    """input (N, n_in, T) -> MatMul(W) -> snnc.<neuron_op> [-> MatMul(W2) -> snnc.CubaLI] -> output."""
    fns = {neuron_op: ops.GENERAL_FUNCTIONS[neuron_op]()}
    nodes = [helper.make_node("MatMul", ["W", "input"], ["a"], name="syn"),
             helper.make_node(neuron_op, ["a", "b"], ["s"], name="pop", domain=ops.DOMAIN, **attrs)]
    inits = [numpy_helper.from_array(np.asarray(weight, np.float32), "W"),
             numpy_helper.from_array(np.zeros((), np.float32), "b")]
    out, n_out = "s", len(weight)
    if li is not None:
        w2, li_attrs = li
        fns[ops.CUBA_LI] = ops.GENERAL_FUNCTIONS[ops.CUBA_LI]()
        nodes += [helper.make_node("MatMul", ["W2", "s"], ["a2"], name="syn2"),
                  helper.make_node(ops.CUBA_LI, ["a2", "b"], ["v"], name="readout", domain=ops.DOMAIN, **li_attrs)]
        inits.append(numpy_helper.from_array(np.asarray(w2, np.float32), "W2"))
        out, n_out = "v", len(w2)
    nodes.append(helper.make_node("Identity", [out], ["output"], name="output"))
    graph = helper.make_graph(nodes, "neurons", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                               ["N", n_in, "T"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", n_out, "T"])], inits)
    model = helper.make_model(graph, ir_version=ops.IR_VERSION, opset_imports=ops.model_opsets(fns.values()),
                              functions=list(fns.values()))
    import onnx  # lazy: only here
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize("case", sorted(LIF_CASES))
def test_onnx_reset_modes_hand_computed(tmp_path, case):
    """The dialect's general CubaLIF body in onnxruntime gives the hand-computed spikes, for real
    (state_scale 0) and integer (S = 4096) dynamics, and equals reference-float on the import."""
    kw, expected = LIF_CASES[case]
    for S in (0, 4096):
        attrs = ops.cuba_attributes(1.0, 0.5, 1.0, S, reset=kw["reset"], reset_delay=kw.get("reset_delay", False))
        path = _onnx_model(tmp_path / f"m{S}.onnx", 1, [[0.75]], ops.CUBA_LIF, attrs)
        ort_out = run_onnxruntime(path, _ones()).output
        assert np.array_equal(ort_out[0, 0], expected), (S, ort_out[0, 0].tolist())
        g = import_onnx(path)
        assert [(n.reset, n.reset_delay) for n in g.nodes.values() if isinstance(n, CubaLIF)] == \
               [(kw["reset"], kw.get("reset_delay", False))]
        assert np.array_equal(run_reference(g, _ones(), "float").output, ort_out)


def test_onnx_random_network_equals_reference_float(tmp_path):
    """A 12 -> 16 LIF (subtract, reset_delay) -> 4 LI network, real-valued dynamics, weights on
    the 2**-6 grid (float32 MatMul sums are exact): onnxruntime == reference-float (spikes of the
    read-out's input and the read-out values, to float32)."""
    rng = np.random.default_rng(3)
    w1 = np.round(rng.normal(0.3, 0.5, (16, 12)) * 64) / 64
    w2 = np.round(rng.normal(0.0, 0.5, (4, 16)) * 64) / 64
    x = (rng.random((3, 12, 40)) < 0.3).astype(np.float32)
    attrs = ops.cuba_attributes(0.25, 0.125, 1.25, 0, reset="subtract", reset_delay=True)
    li = (w2, ops.li_attributes(0.5, 0.0625, 0))
    path = _onnx_model(tmp_path / "net.onnx", 12, w1, ops.CUBA_LIF, attrs, li=li)
    ort = run_onnxruntime(path, x)
    g = import_onnx(path)
    assert [type(n).__name__ for n in g.nodes.values()].count("CubaLI") == 1
    ref = run_reference(g, x, "float")
    assert ref.output.dtype == np.float64
    assert ort.counts["pop"].sum() > 100 and np.array_equal(ort.counts["pop"], ref.counts["pop"])
    assert np.array_equal(ort.output, ref.output.astype(np.float32))


def test_onnx_leaky_integrator_hand_computed(tmp_path):
    for S in (0, 4096):
        path = _onnx_model(tmp_path / f"li{S}.onnx", 1, [[1.0], [-0.5]], ops.CUBA_LI, ops.li_attributes(0.5, 0.25, S))
        out = run_onnxruntime(path, LI_X).output
        assert np.array_equal(out[0], np.array([LI_V0, [-0.5 * v for v in LI_V0]], np.float32)), S
        g = import_onnx(path)
        assert isinstance(g.nodes["pop"], CubaLI) and g.nodes["pop"].state_scale == S


# ------------------------------------------------------------------ Lava (layered and fused)
def _zoo(seed=0, n_in=6, n=5) -> Graph:
    """One graph with every rule: four populations (subtract, subtract delayed, none, zero) on
    random dyadic weights, a CubaLI read-out of the delayed one (through Delay(1)) with a bias, and
    a bias-driven population without input (IF, subtract; bias 0.25 and 0.3125)."""
    from snnc.compiler.ir import Delay  # (only here)
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("x", Input((n_in,)))
    for k, kw in {"sub": dict(reset="subtract"), "late": dict(reset="subtract", reset_delay=True),
                  "none": dict(reset="none"), "zero": dict(reset="zero"),
                  "snt": dict(reset="subtract_snntorch")}.items():
        g.add(f"w_{k}", Dense(np.round(rng.normal(0.35, 0.4, (n, n_in)) * 32) / 32), "x")
        g.add(f"p_{k}", CubaLIF((n,), 0.25, 0.125, 1.0, **kw), f"w_{k}")
        g.add(f"o_{k}", Output((n,)), f"p_{k}")
    g.add("d", Delay(np.array(1)), "p_late")
    g.add("w_li", Dense(np.round(rng.normal(0, 0.5, (3, n)) * 32) / 32), "d")
    g.add("li", CubaLI((3,), 0.5, 0.0625, bias=0.125), "w_li")
    g.add("o_li", Output((3,)), "li")
    g.add("p_bias", CubaLIF((2,), 1.0, 0.0, 1.0, bias=np.array([0.25, 0.3125]), reset="subtract"))
    g.add("o_bias", Output((2,)), "p_bias")
    return g


def _zoo_input():
    return (np.random.default_rng(5).random((2, 6, 30)) < 0.4).astype(np.float64)


def _assert_same(ref, other):
    for o, a in ref.outputs.items():
        assert np.array_equal(a, other.outputs[o]), (o, np.abs(a - other.outputs[o]).max())
    assert sorted(other.counts) == sorted(ref.counts)
    for p, c in ref.counts.items():
        assert np.array_equal(c, other.counts[p]), p


def _check_zoo_reference(ref):
    """The hand-computable parts: the bias-driven neuron 0 (v = .25 per step, subtract) spikes
    at t = 4, 8, ..., 28; every population is active."""
    assert np.flatnonzero(ref.outputs["o_bias"][0, 0]).tolist() == list(range(4, 30, 4))
    assert all(c.sum() > 30 for c in ref.counts.values())


@pytest.mark.timeout(300)
def test_lava_fixed_equals_reference_fixed_bit_for_bit():
    """Lava fixed_pt (snnc's LIFResetRule / LeakyIntegrator models, Lava's LIF for zero reset)
    == reference fixed: every output (spikes and the read-out's values) and every count."""
    from snnc.backends.lava_backend import run_lava  # lazy: heavy
    g = quantize(_zoo())
    x = _zoo_input()
    ref = run_reference(g, x, "fixed")
    _check_zoo_reference(ref)
    lava = run_lava(g, x, "fixed", timeout=240)
    _assert_same(ref, lava)
    assert np.any(ref.outputs["o_li"] != 0) and lava.outputs["o_li"].dtype == np.float64


@pytest.mark.timeout(300)
def test_lava_float_equals_reference_float():
    """Lava floating_pt vs reference float: identical (dyadic weights, same operation order)."""
    from snnc.backends.lava_backend import run_lava  # lazy: heavy
    g = _zoo()
    x = _zoo_input()
    ref = run_reference(g, x, "float")
    _check_zoo_reference(ref)
    _assert_same(ref, run_lava(g, x, "float", timeout=240))


@pytest.mark.timeout(300)
def test_lava_fused_runs_every_rule():
    """The fused Lava engine (reference step plan in one Lava process) gives the same outputs."""
    from snnc.backends.lava_fused import run_lava_fused  # lazy: heavy
    x = _zoo_input()
    for mode, g in (("fixed", quantize(_zoo())), ("float", _zoo())):
        _assert_same(run_reference(g, x, mode), run_lava_fused(g, x, mode, timeout=240))


# ------------------------------------------------------------------ info, deploy, netx export
def test_deployment_notes_name_custom_neuron_programs():
    from snnc.compiler.notes import custom_neuron_programs, deployment_notes
    g = quantize(_zoo())
    custom = custom_neuron_programs(g)
    assert sorted(custom) == ["li", "p_bias", "p_late", "p_none", "p_snt", "p_sub"]
    assert "snnTorch" in custom["p_snt"]
    assert custom["p_late"] == "reset by subtraction, one step late (reset_delay)"
    notes = "\n".join(deployment_notes(g))
    for p in custom:
        assert f"population {p!r}: {custom[p]}" in notes
    assert "population 'p_bias': no input; driven by its bias alone" in notes
    assert "'p_zero'" not in notes


def test_deploy_dry_run_reports_custom_neuron_programs():
    from snnc import deploy
    m, _, report = deploy.dry_run(quantize(_zoo()))
    layers = {L["name"]: L for L in report["map"]["layers"]}
    assert layers["li"]["model"] == "CubaLI"
    assert layers["p_sub"]["custom_neuron_program"] == "reset by subtraction"
    assert layers["p_zero"]["custom_neuron_program"] is None
    table = m.table()
    assert "needs a custom (microcoded) neuron program on Loihi 2" in table
    assert "  p_none: no reset" in table and "p_zero:" not in table


def test_cli_info_and_deploy_say_so(tmp_path, capsys):
    from snnc.cli import main
    attrs = ops.cuba_attributes(1.0, 0.5, 1.0, 4096, reset="subtract", reset_delay=True)
    path = _onnx_model(tmp_path / "m.onnx", 1, [[0.75]], ops.CUBA_LIF, attrs)
    assert main(["info", path]) == 0
    out = capsys.readouterr().out
    assert "reset subtract delayed" in out
    assert ("population 'pop': reset by subtraction, one step late (reset_delay). Lava CPU: snnc's "
            "LIFResetRule") in out and "custom (microcoded) neuron program" in out
    assert main(["deploy", path, "--dry-run", "--map", str(tmp_path / "m.map.json")]) == 0
    assert "  pop: reset by subtraction, one step late (reset_delay)" in capsys.readouterr().out


def test_netx_export_refuses_by_name(tmp_path):
    from snnc.backends.netx_export import export_netx
    from snnc.compiler.ir import Delay
    g = Graph()
    g.add("x", Input((2,)))
    g.add("syn", Dense(np.eye(2) * 0.5), "x")
    g.add("pop", CubaLIF((2,), 1.0, 0.5, 1.0, reset="subtract"), "syn")
    g.add("d", Delay(np.array(1)), "pop")
    g.add("out", Output((2,)), "d")
    with pytest.raises(SnncError, match="node 'pop': reset 'subtract' cannot be written"):
        export_netx(g, str(tmp_path / "a.net"))
    with pytest.raises(SnncError, match="node 'li': a non-spiking leaky-integrator read-out"):
        export_netx(_li_graph(), str(tmp_path / "b.net"))


def test_loihi2_run_refuses_custom_neurons_by_name():
    """A real Loihi 2 run is refused by name (snnc ships no custom neuron programs)."""
    from snnc.backends import loihi_hw
    with pytest.raises(SnncError, match="custom neuron program.*'p_late': reset by subtraction, one step late"):
        loihi_hw.run_hw(quantize(_zoo()), _zoo_input(), config="loihi2", check_runtime=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_hardware_path_simulated():
    """The hardware plan under Loihi2SimCfg (snnc's fixed_pt models) == reference fixed."""
    from snnc.backends import loihi_hw  # lazy: heavy
    g = quantize(_zoo())
    x = _zoo_input()
    _assert_same(run_reference(g, x, "fixed"), loihi_hw.run_hw(g, x, config="sim-fixed", check_runtime=False))


@pytest.mark.parametrize("q", [True, False])
def test_snnc_nn_subtract_reset_exports(tmp_path, q):
    """snnc.nn LIF(reset="subtract") exports with the general body: its PyTorch forward ==
    onnxruntime == reference fixed (quantize=True, 8-bit weight hooks) / reference float."""
    import torch  # lazy: heavy
    import snnc
    import snnc.nn as sn
    torch.manual_seed(0)
    n1, n2 = sn.stbp(quantize=q, reset="subtract"), sn.stbp(quantize=q, reset="subtract")
    wq = (lambda n: n.weight_quant()) if q else (lambda n: None)
    net = torch.nn.Sequential(sn.Linear(30, 20, bias=False, weight_quant=wq(n1)), n1,
                              sn.Linear(20, 10, bias=False, weight_quant=wq(n2)), n2)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, sn.Linear):
                m.weight.mul_(3.0)
        x = (torch.rand(4, 30, 30, generator=torch.Generator().manual_seed(2)) < 0.4).float()
        y = net(x).numpy()
    path = str(tmp_path / "m.onnx")
    snnc.export(net, x, path)
    assert y.sum() > 100
    assert np.array_equal(run_onnxruntime(path, x.numpy()).output, y)
    g = snnc.compile(path)
    assert [n.reset for n in g.nodes.values() if isinstance(n, CubaLIF)] == ["subtract", "subtract"]
    assert np.array_equal(run_reference(g, x.numpy(), "fixed" if q else "float").output, y)


# ------------------------------------------------------------------ fast plan == executable spec
def _mixed_graph(seed: int) -> Graph:
    """Conv -> CubaLIF (rule A) -> Flatten -> Dense -> CubaLIF (rule B, recurrent through
    Delay(1)) -> Dense -> CubaLI, plus a Conv -> CubaLI read-out and strong-input populations
    (v saturates) with subtract and none; random rules, decays and per-neuron thresholds."""
    from snnc.compiler.ir import Conv2d, Delay, Flatten  # (only here)
    rng = np.random.default_rng(seed)
    rules = [dict(reset="zero"), dict(reset="subtract"), dict(reset="subtract", reset_delay=True),
             dict(reset="none"), dict(reset="zero", reset_delay=True)]
    a, b = (rules[i] for i in rng.choice(len(rules), 2))
    g = Graph()
    g.add("x", Input((2, 6, 6)))
    g.add("conv", Conv2d(rng.normal(0.3, 0.5, (3, 2, 3, 3))), "x")
    g.add("c", CubaLIF((3, 4, 4), 0.25, 0.125, rng.uniform(0.8, 1.5, (3, 4, 4)), **a), "conv")
    g.add("flat", Flatten(), "c")
    g.add("fc", Dense(rng.normal(0.1, 0.4, (10, 48))), "flat")
    g.add("h", CubaLIF((10,), 0.5, 0.0625, 1.0, bias=0.05, **b), "fc")
    g.add("hd", Delay(np.array(1)), "h")
    g.add("rec", Dense(rng.normal(0, 0.3, (10, 10))), "hd")
    g.edges.append(("rec", "h"))
    g.add("ro", Dense(rng.normal(0, 0.5, (4, 10))), "hd")
    g.add("li", CubaLI((4,), 0.5, 0.03, bias=-0.02), "ro")
    g.add("o_li", Output((4,)), "li")
    g.add("conv2", Conv2d(rng.normal(0, 0.5, (2, 2, 3, 3))), "x")
    g.add("cli", CubaLI((2, 4, 4), 1.0, 0.1), "conv2")
    g.add("o_cli", Output((2, 4, 4)), "cli")
    g.add("o_h", Output((10,)), "h")
    for k, kw in (("s", dict(reset="subtract")), ("n", dict(reset="none"))):
        g.add(f"big_{k}", Dense(np.full((3, 72), 3.5)), "x_flat")
        g.add(f"sat_{k}", CubaLIF((3,), 1.0, 0.0, 2000.0, **kw), f"big_{k}")
        g.add(f"o_{k}", Output((3,)), f"sat_{k}")
    g.add("x_flat", Flatten(), "x")
    return g


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_fast_reference_equals_spec_with_every_rule(seed):
    """The compiled step plan == the executable spec: outputs, counts and per-step u/v of every
    population (read-outs included), fixed and float; v saturates in the strong-input ones."""
    from snnc.backends.reference import _Sim as Fast
    from snnc.backends.reference_spec import _Sim as Spec
    g = _mixed_graph(seed)
    x = (np.random.default_rng(10 + seed).random((3, 2, 6, 6, 40)) < 0.3).astype(np.float64)
    for mode, gg in (("fixed", quantize(g)), ("float", g)):
        a, b = run_reference(gg, x, mode), run_reference_spec(gg, x, mode)
        _assert_same(b, a)
        fast, spec = Fast(gg, mode, 3), Spec(gg, mode, 3)
        pops = [k for k, v in gg.nodes.items() if isinstance(v, (CubaLIF, CubaLI))]
        for t in range(x.shape[-1]):
            xt = {"x": x[..., t]}
            fast.step(t, xt)
            spec.step(t, {"x": xt["x"].astype(np.int64)} if mode == "fixed" else xt)
            for p in pops:
                for q in ("u", "v"):
                    assert np.array_equal(fast.state[p][q], spec.state[p][q]), (mode, p, q, t)
        if mode == "fixed":
            assert np.max(fast.state["sat_n"]["v"]) == 2 ** 23 - 1     # saturated, never reset


@pytest.mark.timeout(300)
def test_lava_fixed_conv_recurrent_and_conv_readout():
    """Lava fixed_pt on the mixed graph (seed 1: delayed subtraction in a Conv population and in a
    recurrent one, a (C, H, W) CubaLI read-out of a Conv, saturating subtract/none populations)
    == reference fixed, bit for bit (one threshold per population: Lava's LIF has one vth)."""
    import dataclasses
    from snnc.backends.lava_backend import run_lava  # lazy: heavy
    g = _mixed_graph(1)
    g.nodes["c"] = dataclasses.replace(g.nodes["c"], threshold=1.25)
    assert (g.nodes["c"].reset, g.nodes["c"].reset_delay, g.nodes["h"].reset_delay) == ("subtract", True, True)
    g = quantize(g)
    x = (np.random.default_rng(11).random((2, 2, 6, 6, 30)) < 0.3).astype(np.float64)
    ref = run_reference(g, x, "fixed")
    assert ref.counts["h"].sum() > 100 and ref.counts["sat_n"].sum() > 10
    _assert_same(ref, run_lava(g, x, "fixed", timeout=240))


def test_onnx_recurrent_general_body_with_delayed_subtract(tmp_path):
    """snnc.RecurrentCubaLIF (general body, the form of snnTorch's RLeaky/RSynaptic) with reset
    subtract + reset_delay and real dynamics: onnxruntime == reference-float of the import."""
    import onnx  # lazy: only here
    rng = np.random.default_rng(4)
    w = np.round(rng.normal(0.3, 0.5, (8, 5)) * 64) / 64
    w_rec = np.round(rng.normal(0.0, 0.4, (8, 8)) * 64) / 64
    fn = ops.GENERAL_FUNCTIONS[ops.RECURRENT_CUBA_LIF]()
    attrs = ops.cuba_attributes(0.5, 0.25, 1.0, 0, reset="subtract", reset_delay=True)
    nodes = [helper.make_node("MatMul", ["W", "input"], ["a"], name="syn"),
             helper.make_node(ops.RECURRENT_CUBA_LIF, ["a", "Wr", "b"], ["s"], name="rpop", domain=ops.DOMAIN,
                              **attrs),
             helper.make_node("Identity", ["s"], ["output"], name="output")]
    inits = [numpy_helper.from_array(w.astype(np.float32), "W"),
             numpy_helper.from_array(w_rec.astype(np.float32), "Wr"),
             numpy_helper.from_array(np.zeros((), np.float32), "b")]
    graph = helper.make_graph(nodes, "rec", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 5, "T"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 8, "T"])], inits)
    model = helper.make_model(graph, ir_version=ops.IR_VERSION, opset_imports=ops.model_opsets([fn]), functions=[fn])
    onnx.checker.check_model(model, full_check=True)
    path = str(tmp_path / "rec.onnx")
    onnx.save(model, path)
    x = (rng.random((2, 5, 50)) < 0.4).astype(np.float32)
    ort = run_onnxruntime(path, x)
    g = import_onnx(path)
    assert g.nodes["rpop"].delayed_subtract
    assert ort.output.sum() > 100
    assert np.array_equal(run_reference(g, x, "float").output, ort.output)
