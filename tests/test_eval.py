"""``snnc eval``: accuracy over a labelled data set, the same whatever the sharding.

The oracle is independent of the sharding code: one ``snnc.run`` over the whole batch and a numpy
argmax of the spike counts. Sharded runs (1 vs 2 local processes, a Lava engine, a local Ray
cluster) must give the same predictions and spike totals.
"""
import json

import numpy as np
import pytest

import snnc
from snnc import api
from snnc.evaluate import evaluate, readout_scores, shards
from slayer_nets import dense_net, spikes

N = 12


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval")
    net, _ = dense_net(N=2)
    xt = spikes((N, 40, 48), seed=5)
    snnc.export(net, xt[:2], str(d / "m.onnx"))
    x = xt.numpy()
    snnc.compile(str(d / "m.onnx"), str(d / "m.snnc"))
    y = np.arange(N) % 10
    np.save(d / "x.npy", x)
    np.save(d / "y.npy", y)
    return d, x, y


def _oracle(path, x, y, backend="reference"):
    r = api.run(str(path), x, backend=backend)
    pred = r.output.sum(-1).argmax(1)
    return pred, float(np.mean(pred == y)), r.layer_totals()


def test_accuracy_equals_one_unsharded_run(model):
    d, x, y = model
    pred, acc, totals = _oracle(d / "m.snnc", x, y)
    rep = evaluate(str(d / "m.snnc"), x, y, engine="reference", shard_size=5)   # 3 uneven shards
    assert rep.predictions == pred.tolist()
    assert rep.accuracy == acc
    assert rep.spikes == totals and sum(totals.values()) > 0
    assert sum(n for _, n in rep.per_class.values()) == N
    assert sum(c for c, _ in rep.per_class.values()) == int(round(acc * N))


def test_one_and_two_workers_identical_on_lava(model):
    d, x, y = model
    one = evaluate(str(d / "m.snnc"), x, y, engine="lava-fused-fixed", workers=1, shard_size=6)
    two = evaluate(str(d / "m.snnc"), x, y, engine="lava-fused-fixed", workers=2, shard_size=6)
    pred, acc, totals = _oracle(d / "m.snnc", x, y)       # the reference is bit-exact with Lava fixed
    assert one.predictions == two.predictions == pred.tolist()
    assert one.spikes == two.spikes == totals
    assert two.workers == 2


def test_lava_fixed_two_workers_equals_reference(model):
    d, x, y = model
    rep = evaluate(str(d / "m.snnc"), x[:4], y[:4], engine="lava-fixed", workers=2, shard_size=2)
    pred, acc, totals = _oracle(d / "m.snnc", x[:4], y[:4])
    assert rep.predictions == pred.tolist() and rep.spikes == totals


def test_local_ray_cluster_identical(model):
    pytest.importorskip("ray")
    d, x, y = model
    rep = evaluate(str(d / "m.snnc"), x, y, engine="reference", workers=2, ray="local", shard_size=4)
    pred, acc, totals = _oracle(d / "m.snnc", x, y)
    assert rep.predictions == pred.tolist() and rep.spikes == totals
    assert rep.cluster == "ray local"


def test_readouts_by_hand():
    out = np.zeros((1, 3, 4))
    out[0, 0] = [1, 0, 0, 0]           # early spike
    out[0, 1] = [0, 0, 0, 1]           # late spike
    out[0, 2] = [0.5, 2.0, 0.25, 0.25] # graded values
    assert readout_scores(out, "count").tolist() == [[1, 1, 3.0]]
    assert readout_scores(out, "max").tolist() == [[1, 1, 2.0]]
    assert readout_scores(out, "last").tolist() == [[0, 1, 0.25]]
    # trace with tau 2: an early spike counts 1 - 0.5**4, a late one 1 - 0.5**1
    tr = readout_scores(out[:, :2], "trace:2")
    assert np.allclose(tr, [[1 - 0.5 ** 4, 0.5]])


def test_shards_cover_every_sample_once():
    for n, w, size in [(1, 1, None), (10, 3, None), (1000, 2, None), (7, 2, 3)]:
        parts = shards(n, w, size)
        assert [i for s, e in parts for i in range(s, e)] == list(range(n))


def test_cli_writes_json(model, cli):
    d, x, y = model
    rc, out, err = cli("eval", d / "m.snnc", "--data", d / "x.npy", "--labels", d / "y.npy", "--quiet",
                       "--json", d / "r.json")
    assert rc == 0, err
    rep = json.loads((d / "r.json").read_text())
    pred, acc, totals = _oracle(d / "m.snnc", x, y)
    assert rep["accuracy"] == acc and rep["predictions"] == pred.tolist() and rep["spikes"] == totals
    assert "accuracy" in out and "blocks_0_neuron" in out


@pytest.mark.parametrize("args, words", [
    (["--labels", "bad-labels"], "expected (12,)"),
    (["--engine", "gpu"], "unknown engine"),
    (["--workers", "0"], "--workers"),
    (["--readout", "trace:0.5"], "TAU"),
    (["--readout", "median"], "unknown read-out"),
    (["--timeout", "-1"], "--timeout"),
    (["--shard-size", "0"], "--shard-size"),
])
def test_cli_errors(model, args, words, cli):
    d, x, y = model
    np.save(d / "bad-labels.npy", np.zeros(3, dtype=int))
    base = {"--labels": d / "y.npy"}
    argv = ["eval", d / "m.snnc", "--data", d / "x.npy", "--quiet"]
    if args[0] == "--labels":
        argv += ["--labels", d / "bad-labels.npy"]
    else:
        argv += ["--labels", base["--labels"]] + args
    rc, _, err = cli(*argv)
    assert rc == 2 and words in err and "Traceback" not in err, err
