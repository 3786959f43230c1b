"""Rules of the compiler and of the Lava backend that a user meets only through an error, each
through the public API and the ``snnc`` command, with the message asserted:

- a cycle needs a Delay (``passes.topo_order``);
- pooling folds into the next synapse only where that is exact (``fold.fold_pooling``), and large
  layers (checked on random inputs instead of as matrices) fold exactly too;
- Lava needs a step of delay per synapse on every cycle (``lava_plan``: "cycle whose delay is too
  short"), a graph the IR and the reference run.
"""
import numpy as np
import pytest

import snnc
from snnc.compiler import artifact, fold
from snnc.compiler.ir import Conv2d, CubaLIF, Delay, Dense, Flatten, Graph, Input, Output, SumPool2d
from snnc.errors import SnncError

from small_nets import lif, spikes


def assert_one_line(rc, err, *words):
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnc: error:") and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


def _two_populations(back_delay):
    """in -> fa -> a -> fb -> b, and b -> [Delay] -> fr -> a (a recurrent loop)."""
    rng = np.random.default_rng(0)
    g = Graph()
    g.add("in", Input((6,)))
    g.add("fa", Dense(rng.normal(0.6, 0.5, (5, 6))), "in")
    g.add("a", lif((5,)), "fa")
    g.add("fb", Dense(rng.normal(0.6, 0.5, (4, 5))), "a")
    g.add("b", lif((4,)), "fb")
    if back_delay:
        g.add("d", Delay(np.array(1)), "b")
    g.add("fr", Dense(rng.normal(0.0, 0.5, (5, 4))), "d" if back_delay else "b")
    g.edges.append(("fr", "a"))
    g.add("out", Output((4,)), "b")
    return g


# ----------------------------------------------------------------------------- a cycle needs a Delay
def test_cycle_without_delay_is_refused_by_compile_and_run():
    g = _two_populations(back_delay=False)
    for call in (lambda: snnc.compile(g), lambda: snnc.run(g, spikes((6, 10)), backend="reference")):
        with pytest.raises(SnncError) as e:
            call()
        msg = str(e.value)
        assert "cycle without a delay" in msg and "must pass through a Delay node" in msg
        assert all(f"'{n}'" in msg for n in ("a", "fb", "b", "fr")), msg     # the nodes of the cycle
        assert "'in'" not in msg and "'fa'" not in msg                       # (what the cycle feeds may be listed)


def test_cycle_without_delay_in_an_artifact_is_one_clear_line(tmp_path, cli):
    path = tmp_path / "loop.snnc"
    artifact.save(_two_populations(back_delay=False), str(path))      # save checks nothing; load does
    np.save(tmp_path / "x.npy", spikes((6, 10)))
    for args in (["info", path], ["run", path, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz",
                                  "--backend", "reference"]):
        rc, _, err = cli(*args)
        assert_one_line(rc, err, "cycle without a delay", "Delay node")
    assert not (tmp_path / "y.npz").exists()


def test_the_same_cycle_with_a_delay_compiles_and_runs():
    q = snnc.compile(_two_populations(back_delay=True))
    r = snnc.run(q, spikes((2, 6, 30)), backend="reference")
    assert r.counts["a"].sum() > 0 and r.counts["b"].sum() > 0


# ----------------------------------------------------------------------------- Lava: a step per synapse
def test_lava_refuses_a_cycle_shorter_than_its_synapses(tmp_path, cli):
    """The loop a -> fb -> b -> Delay(1) -> fr -> a has two synapses and one step of delay: legal
    in the IR (the reference runs it), but each Lava synapse takes a step, so Lava cannot keep
    its timing. Refused before any Lava process starts."""
    q = snnc.compile(_two_populations(back_delay=True))
    x = spikes((2, 6, 30))
    assert snnc.run(q, x, backend="reference").output.sum() > 0
    for backend in ("lava-fixed", "lava-float"):
        with pytest.raises(SnncError, match="cycle whose delay is too short for Lava"):
            snnc.run(q, x, backend=backend, timeout=60)
    path = tmp_path / "loop.snnc"
    artifact.save(q, str(path))
    np.save(tmp_path / "x.npy", x)
    rc, _, err = cli("run", path, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz", "--backend", "lava-fixed",
                     "--timeout", "60")
    assert_one_line(rc, err, "cycle whose delay is too short for Lava", "at least one step of delay per synapse")
    assert not (tmp_path / "y.npz").exists()


# ----------------------------------------------------------------------------- fold: exact or refused
def _pool_conv(hw, c=2, conv_stride=(1, 1), pool_padding=(0, 0), seed=1, out=4):
    """Input(c, hw, hw) -> SumPool2d(2, 2, 1/4) -> Conv2d(3x3, pad 1) -> LIF -> Output (STBP's
    avg-pool of spikes straight into the next synapse)."""
    rng = np.random.default_rng(seed)
    g = Graph()
    g.add("in", Input((c, hw, hw)))
    g.add("pool", SumPool2d((2, 2), (2, 2), padding=pool_padding, weight=0.25), "in")
    g.add("conv", Conv2d(rng.normal(0.3, 1.0, (out, c, 3, 3)), stride=conv_stride, padding=(1, 1)), "pool")
    shape = g.nodes["conv"].output_shape(g.nodes["pool"].output_shape((c, hw, hw)))
    g.add("lif", lif(shape), "conv")
    g.add("out", Output(shape), "lif")
    return g


def _torch_pool_then_conv(g, x):
    """The unfolded network's synaptic input, by torch (independent of snnc's conv code)."""
    import torch  # lazy: heavy
    import torch.nn.functional as F
    conv = g.nodes["conv"]
    t = torch.from_numpy(np.moveaxis(x, -1, 1).reshape((-1,) + x.shape[1:-1]).astype(np.float64))
    pooled = F.avg_pool2d(t, 2, 2)
    return F.conv2d(pooled, torch.from_numpy(np.asarray(conv.weight, np.float64)), stride=conv.stride,
                    padding=conv.padding).numpy()


def _torch_folded(node, x):
    import torch  # lazy: heavy
    import torch.nn.functional as F
    t = torch.from_numpy(np.moveaxis(x, -1, 1).reshape((-1,) + x.shape[1:-1]).astype(np.float64))
    return F.conv2d(t, torch.from_numpy(np.asarray(node.weight, np.float64)), stride=node.stride,
                    padding=node.padding).numpy()


@pytest.mark.parametrize("hw,large", [(8, False), (40, True)])
def test_pooling_folds_exactly_small_and_large(hw, large):
    """A 2x2 average pool into a 3x3 conv becomes one 6x6 stride-2 conv. The large layer
    (n_in * n_out above fold.MATRIX_CHECK_MAX) is checked by fold on random inputs, not as
    matrices; both folded convs equal torch's avg_pool2d then conv2d."""
    g = _pool_conv(hw, c=4 if large else 2, out=8 if large else 4)
    n_in = int(np.prod(g.nodes["in"].shape))
    n_out = int(np.prod(g.nodes["lif"].shape))
    assert (n_in * n_out > fold.MATRIX_CHECK_MAX) == large
    q = snnc.compile(g)
    assert "pool" not in q.nodes and q.metadata["folds"] == [dict(pool="pool", into="conv", kind="conv",
                                                                  kernel=[6, 6])]
    x = spikes((2,) + tuple(g.nodes["in"].shape) + (3,), rate=0.5)
    want = _torch_pool_then_conv(g, x)
    got = _torch_folded(q.nodes["conv"], x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert snnc.run(q, x, backend="reference").output.shape == (2,) + tuple(g.nodes["lif"].shape) + (3,)


@pytest.mark.parametrize("hw", [9, 41], ids=["matrix-check", "large-layer-check"])
def test_pooling_that_cannot_fold_exactly_is_refused(hw, tmp_path, cli):
    """An odd input: the pool drops the last row and column, but the folded conv's padding would
    read them. Refused, on the small (matrix) and the large (random input) check."""
    g = _pool_conv(hw, c=4 if hw > 20 else 2, out=8 if hw > 20 else 4)
    with pytest.raises(SnncError) as e:
        snnc.compile(g)
    assert "cannot fold pooling into conv 'conv' exactly" in str(e.value)
    assert "use a size the pool stride tiles exactly" in str(e.value)
    path = tmp_path / "float.snnc"
    artifact.save(g, str(path))                                 # an uncompiled graph: info compiles it
    rc, _, err = cli("info", path)
    assert_one_line(rc, err, "cannot fold pooling into conv 'conv' exactly")


def test_pooling_fold_refusals_name_the_nodes():
    with pytest.raises(SnncError, match="cannot fold pooling into conv 'conv': needs conv stride 1"):
        snnc.compile(_pool_conv(8, conv_stride=(2, 2)))
    g = Graph()                                                   # pool -> Delay -> Dense: no neuron between
    g.add("in", Input((2, 4, 4)))
    g.add("pool", SumPool2d((2, 2), (2, 2), weight=0.25), "in")
    g.add("d", Delay(np.array(1)), "pool")
    g.add("f", Flatten(), "d")
    g.add("fc", Dense(np.ones((3, 8))), "f")
    g.add("l", CubaLIF((3,), 0.25, 0.03, 1.25), "fc")
    g.add("out", Output((3,)), "l")
    with pytest.raises(SnncError, match="pooling 'pool' feeds 'd' \\(Delay\\): snnc folds pooling only into"):
        snnc.compile(g)
    g = Graph()                                                   # pool -> Flatten -> Delay -> Dense
    g.add("in", Input((2, 4, 4)))
    g.add("pool", SumPool2d((2, 2), (2, 2), weight=0.25), "in")
    g.add("f", Flatten(), "pool")
    g.add("d", Delay(np.array(1)), "f")
    g.add("fc", Dense(np.ones((3, 8))), "d")
    g.add("l", CubaLIF((3,), 0.25, 0.03, 1.25), "fc")
    g.add("out", Output((3,)), "l")
    with pytest.raises(SnncError, match="cannot fold pooling 'pool': flatten 'f' must feed only Dense synapses"):
        snnc.compile(g)
