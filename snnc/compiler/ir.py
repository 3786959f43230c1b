"""The spiking graph IR: small typed nodes, a plain graph.

Conventions (see docs/ir.md):
- Shapes are per sample, without batch and time: ``(C,)`` or ``(C, H, W)``.
  Tensors that carry data are ``(N, *shape, T)``: batch first, time last (SLAYER layout).
- Time is discrete; one step is one Loihi time step. Synapses (Dense, Conv2d, SumPool2d)
  and Flatten are instantaneous. A ``Delay`` node is the only place where time passes on an
  edge, so every cycle must go through a Delay of at least one step.
- Every parameter is the model's float value. The quantization pass adds a fixed-point view
  (Loihi 2 integers) in ``Graph.fixed``; nodes themselves never change.
- A node's inputs are the sources of the edges into it, summed (fan-in is a sum).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import SnncError

Shape = Tuple[int, ...]


def _pair(v) -> Tuple[int, int]:
    if isinstance(v, (tuple, list, np.ndarray)):
        a, b = (int(x) for x in v)
        return (a, b)
    return (int(v), int(v))


class _Population:
    """A neuron population: its output has its own ``shape``, which its input must have."""

    def output_shape(self, in_shape: Shape) -> Shape:
        if tuple(in_shape) != tuple(self.shape):
            raise ShapeError(f"{type(self).__name__} of shape {tuple(self.shape)} receives input {tuple(in_shape)}")
        return tuple(self.shape)


@dataclass(frozen=True, eq=False)
class Input:
    """A graph input: spikes (or graded values) of shape ``shape`` per step.

    ``kind``: ``"spikes"`` (default) feeds synapses; ``"bias"`` is a per-step bias drive: it
    may feed only CubaLIF populations of the same shape, and its value (in threshold units,
    like ``CubaLIF.bias``) is added to the population's bias at that step. This is how netx
    feeds an input layer (data through ``bias_mant``). ``"graded"``: analog values, rounded by
    the host to the grid ``2**-frac_bits`` (half to even), feeding Dense synapses; in fixed point
    they are sent as integer graded spikes ``round(x * 2**frac_bits)`` (Lava's
    ``num_message_bits``) and the synapse's weight exponent is lowered by ``frac_bits``, so the
    synapse output is floored to whole activation units (docs/methods.md, "Graded inputs").
    """
    shape: Shape
    kind: str = "spikes"
    frac_bits: int = 8              # "graded" only: values are integers times 2**-frac_bits

    def output_shape(self, in_shape: Optional[Shape] = None) -> Shape:
        return tuple(self.shape)


@dataclass(frozen=True, eq=False)
class Output:
    """A graph output: whatever arrives, unchanged, of shape ``shape``."""
    shape: Shape

    def output_shape(self, in_shape: Optional[Shape] = None) -> Shape:
        return tuple(self.shape)


@dataclass(frozen=True, eq=False)
class Dense:
    """y[t] = weight @ x[t]. ``weight``: float ``[out, in]``; input must be 1-D ``(in,)``."""
    weight: np.ndarray

    def output_shape(self, in_shape: Shape) -> Shape:
        if tuple(in_shape) != (self.weight.shape[1],):
            raise ShapeError(f"Dense expects input ({self.weight.shape[1]},), got {tuple(in_shape)}")
        return (self.weight.shape[0],)


@dataclass(frozen=True, eq=False)
class Conv2d:
    """Per-step 2-D convolution (cross-correlation, PyTorch semantics), no bias.

    ``weight``: float ``[out, in/groups, kh, kw]``; input ``(C, H, W)``.
    """
    weight: np.ndarray
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1

    def output_shape(self, in_shape: Shape) -> Shape:
        return _conv_out(in_shape, self.weight.shape[0], self.weight.shape[1] * self.groups,
                         self.weight.shape[2:], self.stride, self.padding, self.dilation, "Conv2d")


@dataclass(frozen=True, eq=False)
class SumPool2d:
    """Per-step sum pooling times a scalar: y = weight * sum over each window (per channel)."""
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int] = (0, 0)
    weight: float = 1.0

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 3:
            raise ShapeError(f"SumPool2d expects (C, H, W), got {tuple(in_shape)}")
        return _conv_out(in_shape, in_shape[0], in_shape[0], self.kernel, self.stride,
                         self.padding, (1, 1), "SumPool2d")

    def as_conv_weight(self, channels: int) -> np.ndarray:
        """The equivalent depthwise conv weight ``[C, 1, kh, kw]`` (groups = C)."""
        return np.full((channels, 1) + tuple(self.kernel), self.weight, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Flatten:
    """Reshape ``(C, H, W)`` to ``(C*H*W,)`` in C order (channel slowest), per step."""

    def output_shape(self, in_shape: Shape) -> Shape:
        return (int(np.prod(in_shape)),)


@dataclass(frozen=True, eq=False)
class Delay:
    """y[t] = x[t - steps]: an integer delay in time steps per neuron (x[t<0] = 0).

    ``steps``: int array broadcastable to the neuron shape (a scalar for a uniform delay).
    """
    steps: np.ndarray

    def output_shape(self, in_shape: Shape) -> Shape:
        try:
            np.broadcast_to(self.steps, in_shape)
        except ValueError:
            raise ShapeError(f"Delay steps of shape {self.steps.shape} do not fit neurons {tuple(in_shape)}")
        return tuple(in_shape)

    @property
    def min_steps(self) -> int:
        return int(np.min(self.steps))

    @property
    def max_steps(self) -> int:
        return int(np.max(self.steps))


RESETS = ("zero", "subtract", "none", "subtract_snntorch")


@dataclass(frozen=True, eq=False)
class CubaLIF(_Population):
    """A population of current-based leaky integrate-and-fire neurons (Loihi's CUBA and the
    LIF/IF/CubaLIF neurons of snnTorch, Norse, Sinabs and NIR).

    Per step (float form; ``x`` = summed synaptic input, in threshold units; ``thr`` = threshold)::

        u[t] = (1 - current_decay) * u[t-1] + x[t]
        v[t] = (1 - voltage_decay) * v[t-1] + u[t] + bias - r[t]
        s[t] = v[t] > thr             (or >= if spike_compare == ">=")

    and the reset (``reset``, ``reset_delay``)::

        "zero",     immediate: r[t] = 0;            v[t] = 0 where s[t]      (Loihi's CUBA)
        "subtract", immediate: r[t] = 0;            v[t] = v[t] - thr where s[t]
                    (the subtracted threshold is decayed with v from the next step on)
        "subtract", delayed:   r[t] = thr * s[t-1]; v[t] not changed where s[t]
                    (snnTorch's default ``reset_delay=True``: the threshold is subtracted one
                    step late, after the decay, undecayed: v[t] = (1-vd) v[t-1] + u[t] + bias
                    - thr * s[t-1], with v[t-1] the value that crossed)
        "zero",     delayed:   v[t] = (1-vd) (1 - s[t-1]) v[t-1] + u[t] + bias (snnTorch
                    ``Leaky``): the same spikes as the immediate zero reset (only the stored v
                    at a spike step differs), so every engine runs it as the immediate one
        "none":     no reset (v keeps integrating; snnTorch ``reset_mechanism="none"``);
                    ``reset_delay`` has no effect
        "subtract_snntorch": snnTorch 1.0's ``reset_mechanism="subtract", reset_delay=False``
                    (``_base_sub`` then its "avoid double reset"): the spike test also subtracts
                    the threshold when the stored v of the last step is still above it,
                    m[t] = v[t] - thr * H(v[t-1] - thr);  s[t] = m[t] > thr;
                    v[t] = v[t] - thr where s[t]  (so v[t] = (1-vd) v[t-1] + u[t] + bias - thr s[t]);
                    the same as "subtract", immediate, while v stays <= thr after a subtraction;
                    ``reset_delay`` has no effect

    snnTorch: ``Leaky(beta)`` is current_decay 1, voltage_decay 1 - beta; ``Synaptic(alpha,
    beta)`` is current_decay 1 - alpha; ``reset_delay`` is snnTorch's flag (its "subtract" and
    "zero" read as above). snnTorch's ``Synaptic`` with "zero" and ``reset_delay=True`` zeroes
    the whole membrane of the step after a spike (input included): that is "zero", immediate,
    with ``refractory=1``.
    IF (integrate-and-fire, no leak): voltage_decay 0 and current_decay 1 (no current state:
    u[t] = x[t]); every engine runs it (fixed point: decay_v 0, decay_u 4096).
    Bias-driven spiking: a population may have no input at all (no incoming edge); it then
    integrates its ``bias`` alone.

    ``state_scale`` > 0 means the model's own dynamics are integer ones, as in SLAYER's
    CUBA neuron and Loihi: u and v are integers in units of 1/state_scale, decays are
    12-bit (round(4096*decay)) and a decay multiplies with round-toward-zero. 0 means
    real-valued dynamics. ``refractory``: steps v is held at 0 after a spike (0 = none; only
    with reset "zero", immediate).
    ``graded``: output the value v/state_scale instead of 1 on a spike. No engine runs it, so
    ``graded=True`` is refused here (and by the importers) rather than silently run as binary.
    Decays are fractions in [0, 1]; threshold and bias are floats (scalars or per neuron).
    ``reset_interval`` > 0: u and v are set to 0 at the start of every step t (before the
    update) with ``t % reset_interval == reset_offset`` (Lava's ``LIFReset``, netx's
    ``reset_interval``); 0 means never.
    Fixed point (``FixedCubaLIF``): the reset subtracts ``vth << 6`` (the integer threshold),
    immediately or at the next step after the decay; v saturates at +-(2**23 - 1) after that.
    Fixed point of "subtract_snntorch": m = v - (vth << 6) [v_prev > vth << 6] with v_prev the
    stored (saturated, reset) v of the last step; s = m > vth << 6; v -= vth << 6 where s.
    Loihi 2's standard CUBA neuron has only the immediate zero reset: "subtract" and "none"
    need a custom neuron program on hardware (``snnc info`` says so).
    """
    shape: Shape
    current_decay: Union[float, np.ndarray]
    voltage_decay: Union[float, np.ndarray]
    threshold: Union[float, np.ndarray]
    bias: Union[float, np.ndarray] = 0.0
    reset: str = "zero"
    refractory: int = 0
    spike_compare: str = ">"
    state_scale: int = 4096
    graded: bool = False
    reset_interval: int = 0
    reset_offset: int = 0
    reset_delay: bool = False

    def __post_init__(self):
        if isinstance(self.graded, (bool, np.bool_, Integral)) and self.graded:
            raise SnncError("CubaLIF with graded=True (a spike carrying v/state_scale) is not supported: no "
                            "engine runs graded CUBA spikes; use binary spikes (graded=False), or sigma-delta "
                            "neurons (SigmaDelta) for graded messages")

    @property
    def delayed_subtract(self) -> bool:
        """True when the threshold is subtracted one step after the spike (see above)."""
        return self.reset == "subtract" and bool(self.reset_delay)

    @property
    def is_standard(self) -> bool:
        """True when Loihi 2's standard CUBA neuron runs it (zero reset, no refractory period)."""
        return self.reset == "zero" and not self.refractory


@dataclass(frozen=True, eq=False)
class CubaLI(_Population):
    """A non-spiking leaky-integrator read-out population (NIR's ``LI``/``CubaLI``, Norse's
    ``LICell``, snnTorch's output ``Leaky`` read as its membrane): current and voltage as
    ``CubaLIF``, no threshold, no reset; the membrane v is the output (real-valued).

    Per step (float form; ``x`` = summed synaptic input)::

        u[t] = (1 - current_decay) * u[t-1] + x[t]
        v[t] = (1 - voltage_decay) * v[t-1] + u[t] + bias
        y[t] = v[t]

    LI (no current state): current_decay 1. It may feed only an Output (the host reads v), like
    ``Average``. ``state_scale`` as ``CubaLIF`` (> 0: integer dynamics in units of 1/S; 0:
    real-valued, the quantization pass picks S from the weights). Fixed point
    (``FixedCubaLI``): u and v are the Loihi CUBA integers (u wraps at 24 bits, v saturates at
    +-(2**23 - 1)) and the output is ``v_int / S``. On Loihi 2 hardware the host must read v (a
    custom neuron program that sends v as a graded spike, or a state probe).
    """
    shape: Shape
    current_decay: Union[float, np.ndarray]
    voltage_decay: Union[float, np.ndarray]
    bias: Union[float, np.ndarray] = 0.0
    state_scale: int = 4096


@dataclass(frozen=True, eq=False)
class Average:
    """Host-side readout: the mean over ``groups`` equal groups of consecutive neurons (C order),
    per step (SLAYER's ``Average`` block: ``mean(x.reshape(N, groups, -1, T), 2)``).

    Output ``(groups,)``, real-valued; it may feed only an Output (Loihi has no such synapse).
    """
    groups: int

    def output_shape(self, in_shape: Shape) -> Shape:
        n = int(np.prod(in_shape))
        if self.groups <= 0 or n % self.groups:
            raise ShapeError(f"Average of {self.groups} groups does not divide {n} neurons {tuple(in_shape)}")
        return (int(self.groups),)


@dataclass(frozen=True, eq=False)
class Delta(_Population):
    """A delta encoder with graded spikes (Lava's ``lava.proc.sdn.Delta``): it reads graph
    ``Input`` values directly (no synapse) and sends the change of its input, when large enough.

    Per step (float form; ``x`` = the summed Input values)::

        delta = x[t] - x[t-1] + residue
        s[t]  = delta where |delta| >= threshold, else 0   (graded: the message is the value)
        residue = delta - s[t]

    ``cumulative_error``: as Lava's ``cum_error`` (``error += delta``; send where
    ``|error| >= threshold``; error reset where sent). Fixed point (see ``SigmaDelta``):
    ``spike_exp``, ``state_exp`` and ``state_scale`` S give the integer units: the state is in
    units of 1/S, messages in units of 1/(S >> state_exp), Lava's input ``a_in`` in units of
    1/(S >> (spike_exp + state_exp)).
    """
    shape: Shape
    threshold: Union[float, np.ndarray] = 0.0
    cumulative_error: bool = False
    spike_exp: int = 6
    state_exp: int = 6
    state_scale: int = 1 << 18


@dataclass(frozen=True, eq=False)
class SigmaDelta(_Population):
    """Sigma-delta neurons with graded spikes (Lava's ``lava.proc.sdn.SigmaDelta``, netx SDNN).

    Per step (float form; ``x`` = summed synaptic input, graded)::

        sigma[t] = sigma[t-1] + x[t]
        act[t]   = relu(sigma[t] + bias)       (activation "relu"; "identity": no relu)
        delta    = act[t] - act[t-1] + residue
        s[t]     = delta where |delta| >= threshold, else 0   (the message carries the value)
        residue  = delta - s[t]

    ``cumulative_error`` as in ``Delta``. Fixed point (Lava ``fixed_pt``): the state (sigma, act,
    residue) is an integer in units of 1/S (S = ``state_scale``), messages in units of
    1/(S >> state_exp) (Lava sends ``s >> state_exp``); Lava's ``vth``/``bias`` parameters are
    in units of 2**(spike_exp + state_exp)/S. netx's SDNN: S = 2**18, spike_exp = state_exp = 6,
    so weights, threshold and bias are the file's integers / 64, as for CUBA.
    """
    shape: Shape
    threshold: Union[float, np.ndarray]
    bias: Union[float, np.ndarray] = 0.0
    activation: str = "relu"
    cumulative_error: bool = False
    spike_exp: int = 6
    state_exp: int = 6
    state_scale: int = 1 << 18


@dataclass(frozen=True, eq=False)
class Sigma(_Population):
    """A sigma (accumulator) output unit (Lava's ``lava.proc.sdn.Sigma``, netx ``sigma_output``):
    ``sigma[t] = sigma[t-1] + x[t]``, sent every step (graded). Fixed point: sigma in units of 1/S
    (S = ``state_scale``), sent unshifted."""
    shape: Shape
    state_scale: int = 1 << 18


Node = Union[Input, Output, Dense, Conv2d, SumPool2d, Flatten, Delay, CubaLIF, CubaLI, Average,
             Delta, SigmaDelta, Sigma]
NODE_TYPES = {c.__name__: c for c in (Input, Output, Dense, Conv2d, SumPool2d, Flatten, Delay, CubaLIF, CubaLI,
                                      Average)}
# sigma-delta nodes (graded spikes): Delta input encoder, SigmaDelta neurons, Sigma output
SIGMA_DELTA = (Delta, SigmaDelta, Sigma)
NODE_TYPES.update({c.__name__: c for c in SIGMA_DELTA})
SYNAPSES = (Dense, Conv2d, SumPool2d)
NEURONS = (CubaLIF,)
LEAKY_INTEGRATORS = (CubaLI,)     # non-spiking: v is the output (may feed only Outputs)


class ShapeError(ValueError):
    """A node's input shape does not fit the node."""


def _conv_out(in_shape, c_out, c_in, kernel, stride, padding, dilation, what) -> Shape:
    if len(in_shape) != 3:
        raise ShapeError(f"{what} expects (C, H, W), got {tuple(in_shape)}")
    c, h, w = in_shape
    if c != c_in:
        raise ShapeError(f"{what} expects {c_in} input channels, got {c}")
    kh, kw = _pair(kernel)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if ho <= 0 or wo <= 0:
        raise ShapeError(f"{what} kernel {kh}x{kw} does not fit input {h}x{w}")
    return (int(c_out), int(ho), int(wo))


@dataclass
class Graph:
    """Named nodes, directed edges ``(src, dst)``, declared inputs and outputs (node names).

    ``fixed`` maps node names to their Loihi fixed-point view (filled by the quantization pass);
    ``metadata`` holds free-form facts (source file, training method, time steps).
    """
    nodes: Dict[str, Node] = field(default_factory=dict)
    edges: List[Tuple[str, str]] = field(default_factory=list)
    inputs: List[str] = field(default_factory=list)
    outputs: List[str] = field(default_factory=list)
    fixed: Dict[str, object] = field(default_factory=dict)
    metadata: Dict[str, object] = field(default_factory=dict)

    def add(self, name: str, node: Node, *sources: str) -> str:
        """Add ``node`` under ``name`` with edges from ``sources``; returns ``name``."""
        if name in self.nodes:
            raise ValueError(f"duplicate node name {name!r}")
        self.nodes[name] = node
        for s in sources:
            self.edges.append((s, name))
        if isinstance(node, Input):
            self.inputs.append(name)
        if isinstance(node, Output):
            self.outputs.append(name)
        return name

    def connect(self, src: str, dst: str) -> None:
        """Add the edge ``src -> dst`` (both must be nodes; an edge is added once)."""
        for n in (src, dst):
            if n not in self.nodes:
                raise SnncError(f"cannot connect {src!r} -> {dst!r}: no node {n!r}")
        if (src, dst) not in self.edges:
            self.edges.append((src, dst))

    def disconnect(self, src: str, dst: str) -> None:
        """Remove the edge ``src -> dst`` (if there)."""
        self.edges = [e for e in self.edges if e != (src, dst)]

    def remove(self, name: str) -> Node:
        """Remove node ``name`` with every edge into or out of it, and its fixed view; returns it."""
        if name not in self.nodes:
            raise SnncError(f"cannot remove {name!r}: no such node")
        self.edges = [e for e in self.edges if name not in e]
        self.inputs = [n for n in self.inputs if n != name]
        self.outputs = [n for n in self.outputs if n != name]
        self.fixed.pop(name, None)
        return self.nodes.pop(name)

    def replace(self, name: str, node: Node) -> None:
        """Put ``node`` in place of node ``name`` (edges kept; a fixed view of the old one dropped)."""
        if name not in self.nodes:
            raise SnncError(f"cannot replace {name!r}: no such node")
        if isinstance(node, (Input, Output)) != isinstance(self.nodes[name], (Input, Output)) or \
                type(node) in (Input, Output) and type(node) is not type(self.nodes[name]):
            raise SnncError(f"cannot replace {name!r} ({type(self.nodes[name]).__name__}) by a "
                            f"{type(node).__name__}: inputs and outputs keep their kind")
        self.nodes[name] = node
        self.fixed.pop(name, None)

    def lint(self, where: str = "") -> "Graph":
        """Structural checks (``passes.check``: edges, inputs, outputs, cycles, shapes, neurons) and
        parameter checks (``validate``: float view, fixed view when there is one); returns self.
        Raises SnncError naming the node (and ``where``, e.g. a file or the pass just run)."""
        from .validate import lint
        return lint(self, where)

    def predecessors(self, name: str) -> List[str]:
        return [s for s, d in self.edges if d == name]

    def successors(self, name: str) -> List[str]:
        return [d for s, d in self.edges if s == name]

    def shapes(self) -> Dict[str, Shape]:
        """Output shape of every node (see ``passes.infer_shapes``)."""
        from .passes import infer_shapes
        return infer_shapes(self)

    def copy(self) -> "Graph":
        return Graph(dict(self.nodes), list(self.edges), list(self.inputs), list(self.outputs),
                     dict(self.fixed), dict(self.metadata))

    def __str__(self) -> str:
        from .printing import graph_table
        return graph_table(self)
