"""Test-side helper: an SDNN with the layer shapes of lava-dl's *tutorial* PilotNet SDNN
(tutorials/lava/lib/dl/netx/pilotnet_sdnn, the network Intel's closed compiler mapped to 61
Loihi 2 cores in benchmark.ipynb). That file is not in the wheel, so the weights here are random
integers with the bit widths Intel's per-core synapse counts imply for the conv layers (words per
kernel tap 3, 4, 5, 6, 5 -> 8, 7, 6, 6, 5 bits) and 8 bits for the dense layers. Only the map
depends on them; nothing is simulated.

Intel's table (benchmark.ipynb, commit 1878d6d; skip_layers=1, so the Delta input layer was not
on the chip), in graph order: conv 24x32x99 25 cores (3072 neurons/core), 36x15x49 13 (2160),
48x7x24 3 (2688), 64x4x22 3 (2048), 64x2x20 2 (2048), dense 100 12 (8), 50 1, 10 1, 1 1: 61.
"""
import numpy as np

from snnc.compiler.ir import Conv2d, Delay, Delta, Dense, Flatten, Graph, Input, Output, Sigma, SigmaDelta
from snnc.compiler.quantize import quantize

INTEL_CORES = {"conv0": 25, "conv1": 13, "conv2": 3, "conv3": 3, "conv4": 2,
               "fc0": 12, "fc1": 1, "fc2": 1, "fc3": 1}
INTEL_TOTAL = 61
# (out channels, stride, padding, weight bits)
CONVS = [(24, (2, 2), (0, 0), 8), (36, (2, 2), (0, 0), 7), (48, (2, 2), (0, 0), 6),
         (64, (2, 1), (1, 0), 6), (64, (1, 1), (0, 0), 5)]
DENSE = [100, 50, 10, 1]


def _ints(rng, bits, shape):
    m = (1 << (bits - 1)) - 1
    w = rng.integers(-m, m + 1, size=shape)
    w.flat[0], w.flat[1] = m, -m + 1          # both signs, an odd value: exactly `bits` bits
    return w / 64.0


def tutorial_sdnn(seed: int = 0, delta: bool = True) -> Graph:
    """``delta=False``: no Delta input layer (as Intel ran it, skip_layers=1): the input's graded
    messages go straight to the first conv synapse (for the map only: snnc's quantizer wants a
    Delta in front of sigma-delta neurons, so the Delta is cut out of the quantized graph)."""
    rng = np.random.default_rng(seed)
    g = Graph(metadata={"source": "PilotNet SDNN tutorial shapes (synthetic weights)"})
    g.add("input", Input((3, 66, 200)))
    prev = g.add("input0", Delta((3, 66, 200), threshold=0.0), "input")
    shape = (3, 66, 200)
    for i, (co, stride, pad, bits) in enumerate(CONVS):
        w = _ints(rng, bits, (co, shape[0], 3, 3))
        g.add(f"conv{i}.delay", Delay(np.array(1)), prev)
        syn = Conv2d(w, stride, pad)
        g.add(f"conv{i}.syn", syn, f"conv{i}.delay")
        shape = syn.output_shape(shape)
        prev = g.add(f"conv{i}", SigmaDelta(shape, threshold=0.125), f"conv{i}.syn")
    n_in = int(np.prod(shape))
    for i, n in enumerate(DENSE):
        d = g.add(f"fc{i}.delay", Delay(np.array(1)), prev)
        if i == 0:
            d = g.add("fc0.flatten", Flatten(), d)
        g.add(f"fc{i}.syn", Dense(_ints(rng, 8, (n, n_in))), d)
        pop = Sigma((n,)) if i == len(DENSE) - 1 else SigmaDelta((n,), threshold=0.125)
        prev = g.add(f"fc{i}", pop, f"fc{i}.syn")
        n_in = n
    g.add("output", Output((1,)), prev)
    g = quantize(g)
    if not delta:
        del g.nodes["input0"]
        g.nodes["input"] = Input((3, 66, 200), kind="graded", frac_bits=6)
        g.edges = [("input", b) if a == "input0" else (a, b) for a, b in g.edges if b != "input0"]
    return g
