"""Read NIR 1.0.x graphs (``.nir``, the ``nir`` package) into the spiking IR.

A NIR graph is a continuous-time ODE spec: it carries no time step, no integration scheme, no
reset mode and no reset timing, and every exporter discretises it its own way (docs/nir.md). So
the importer takes them as explicit options (:class:`NirOptions`); a ``convention`` presets them
as one library does and checks that the graph's parameters are what that library writes
(refused with the reason otherwise).

Discretisation of one step of size dt (``euler``: forward Euler; ``exact``: the exact
exponential decay of each state with a zero-order-held input), NIR's equations on the left::

    LIF     tau dv/dt = (v_leak - v) + r I        v <- (1-a) v + a (r I + v_leak)
            euler: a = dt/tau;  exact: a = 1 - exp(-dt/tau)
    CubaLIF tau_syn dI/dt = -I + w_in S           I <- (1-b) I + b w_in S   (b as a, from tau_syn)
            tau_mem dv/dt = (v_leak - v) + r I    v <- (1-a) v + a (r I + v_leak)
    IF / I  dv/dt = r I                           v <- v + dt r I
    LI / CubaLI: as LIF / CubaLIF without threshold (non-spiking read-outs, ``CubaLI``)
    Threshold: z = H(v - theta) of its input, stateless

In the IR (``CubaLIF``: ``u = (1-current_decay) u + x``, ``v = (1-voltage_decay) v + u + bias``)
the current is held scaled, ``u = a r I``: current_decay = b (1 with no current state),
voltage_decay = a, and the input gain (``a r``, ``a r b w_in``, ``dt r``) multiplies the weights
of the synapse into the population (per output neuron; per channel for a convolution). A
constant input (an Affine or Conv2d bias, ``v_leak``) becomes the population's ``bias`` when the
population has no current state; into a current it is the weight of a one-neuron population
that spikes every step from its bias (``nir.bias_unit``), so its transient is exact too.

Graph structure: nested ``NIRGraph`` nodes are inlined (names joined with '.'), their
Input/Output nodes are pass-throughs; fan-in is a sum; Affine/Linear/Conv2d/SumPool2d/AvgPool2d/
Scale/Flatten/Delay between two populations become one IR synapse (two Affines in a row are
multiplied into one). A cycle with no ``Delay`` node is a recurrent connection: its back edge
(found by a depth-first walk from the inputs, in file order) carries the previous step's spikes
(``recurrent_delay`` steps, 1 for every library snnc knows). IR time is the library's time: a
spike at input step t acts on the membrane at step t (Spyx: its neurons emit the spike one step
after the crossing, which is an explicit ``Delay(1)`` after each population, and also the step
of its recurrence: a back edge from such a population gets no further delay).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace

import numpy as np

from ..compiler.ir import (
    Conv2d,
    CubaLI,
    CubaLIF,
    Delay,
    Dense,
    Flatten,
    Graph,
    Input,
    Output,
    SumPool2d,
)
from ..errors import SnncError

INTEGRATORS = ("euler", "exact")
RESETS = ("zero", "subtract", "none")
NEURON_TYPES = ("LIF", "CubaLIF", "IF", "I", "LI", "CubaLI", "Threshold")
LINEAR_TYPES = ("Affine", "Linear", "Conv2d", "SumPool2d", "AvgPool2d", "Scale", "Flatten", "Delay")
GAIN_SNAP = 1e-6           # input gains within this of 1 are 1 (an exporter's float32 round-off)
BIAS_UNIT = "nir.bias_unit"


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class Convention:
    """One library's reading of NIR (presets and the checks that the graph is what it writes)."""
    name: str
    dt: float | None             # None: the user must give dt
    integrator: str
    reset: str | None            # None: from the graph (v_reset = 0 -> "zero")
    reset_delay: bool = False
    spike_compare: str = ">"
    output_delay: int = 0           # steps between a crossing and the emitted spike (Spyx: 1)
    back_edge_bias_late: bool = False   # a back edge's synapse output (its bias too) starts 1 step late
    rsynaptic_late_reset: bool = False  # a self-recurrent CubaLIF resets one step late (snnTorch RSynaptic)
    v_starts_at_leak: bool = False      # the membrane starts at v_leak, not 0 (Norse's initial state)
    summary: str = ""


CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("snntorch", 1e-4, "euler", None, rsynaptic_late_reset=True,
               summary="snnTorch 1.0 export: dt = 1e-4, beta = 1 - dt/tau, r = tau/dt, w_in = tau_syn/dt, "
                       "v_leak = 0; v_reset = 0 whatever reset_mechanism was (give --reset subtract "
                       "[--reset-timing delayed] for a model trained with snnTorch's default; immediate is "
                       "snnTorch's reset_delay=False rule exactly, the IR's subtract_snntorch); a CubaLIF "
                       "with a recurrent self-connection is an RSynaptic, whose immediate reset is a no-op "
                       "in snnTorch 1.0.0 (rsynaptic.py writes a local variable): it resets one step late "
                       "(zero: v = 0 at the next step, i.e. refractory 1; subtract: reset_delay)"),
    Convention("norse", 1e-3, "euler", None, back_edge_bias_late=True, v_starts_at_leak=True,
               summary="Norse 1.1 from_nir: dt = 1e-3 (its default), forward Euler; LIF/LI ignore r "
                       "(must be 1); IF is v += I (no dt, no r); CubaLIF's synapse also leaks to v_leak; "
                       "reset to v_reset; a recurrent edge carries the synapse's output of the previous "
                       "step (nirtorch's GraphExecutor), so its bias starts at step 1; the membrane "
                       "starts at v_leak (Norse's initial state)"),
    Convention("sinabs", 1.0, "exact", "subtract",
               summary="Sinabs 3.1 from_nir (sinabs/nir.py at 904eb89): tau in time steps (dt = 1), exact "
                       "decay alpha = exp(-1/tau), v = alpha v + I (LIFSqueeze/ExpLeakSqueeze with "
                       "norm_input=False: unit input gain; IF: v += I), r must be 1 and v_leak 0, no "
                       "CubaLIF; reset by subtraction. Sinabs spikes at v >= threshold (MultiSpike: "
                       "trunc(v/thr) spikes per step) and floors an IF's v at -threshold (min_v_mem); snnc "
                       "emits one spike per step at v > threshold (Loihi's test; spike_compare='>=' for the "
                       "float engines) and does not floor v"),
    Convention("rockpool", None, "exact", "subtract",
               summary="Rockpool 3.1 (rockpool/nn/modules/torch at 42cee1c9: LIFNeuronTorch, LIFTorch; its "
                       "export writes r = tau exp(-dt/tau)/dt, checked): exact decays exp(-dt/tau), LIF v = "
                       "alpha v + x + bias, CubaLIF i = beta (i + x) (the input enters before the decay: "
                       "input gain beta), v = alpha v + i + bias, bias = v_leak per step, reset by "
                       "subtraction at v >= threshold (spike_compare='>=' for the float engines; Rockpool's "
                       "several spikes per step, floor(v/thr), are not reproduced); dt must be given "
                       "(Rockpool's from_nir guesses it per node as tau/(1 + r))"),
    Convention("spyx", 1.0, "euler", "subtract", reset_delay=True, output_delay=1,
               summary="Spyx 1.0 from_nir (src/spyx/nir.py, kmheckel/spyx 38374e9): dt = 1, beta = 1 - "
                       "dt/tau, alpha = 1 - dt/tau_syn, weights as written (r and w_in not read: unit input; "
                       "its export writes r = beta), v_leak not read (must be 0), a recurrent Affine's bias "
                       "dropped (must be 0); spike s[t] = H(V[t-1] - thr) emitted one step after the "
                       "crossing (which is also the step of a recurrence); LIF/IF: V = beta V + x - thr s "
                       "(the subtraction one step late), CubaLIF: V = beta (V - thr s) + I (the "
                       "subtraction at the crossing, immediate)"),
    Convention("spyx-2023", 1.0, "euler", "subtract", reset_delay=True, output_delay=1,
               summary="Spyx as the NIR paper ran it (Nov 2023, haiku; spyx/nir.py at 6a2d735): as spyx, "
                       "but the synapse into a LIF is scaled by dt/tau (r not read); LIF only (its CubaLIF "
                       "scaling changed from commit to commit)"),
    Convention("spikingjelly", 1e-4, "euler", None,
               summary="SpikingJelly 2.0 nir_exchange (from_nir.py at afb13226): dt = 1e-4, LIF r = 1 "
                       "(decay_input) or tau/dt, IF r = 1/dt, one value per layer (tau, r, v_threshold, "
                       "v_reset), v_leak = v_reset, no CubaLIF; hard reset to v_reset (its soft reset is "
                       "written as v_reset = 0 too: give --reset subtract); SpikingJelly spikes at v >= "
                       "threshold, snnc at v > threshold (spike_compare='>=' for the float engines)"),
    Convention("lava", 1e-4, "euler", "zero",
               summary="the NIR paper's nir_to_lava.py (Lava LIF): dt = 1e-4, du = 1 (no current), "
                       "dv = dt/tau, input weight dt/tau, r and v_leak not read (must be 1 and 0); "
                       "rounding='nir_to_lava' gives its fixed-point integers"),
)}


@dataclass(frozen=True)
class NirOptions:
    """How to discretise a NIR graph (see the module docstring and docs/nir.md).

    ``reset``: None takes it from the graph (NIR resets to v_reset, which must be 0: "zero");
    ``reset_delay``: the subtraction one step late (snnTorch's default, see ``CubaLIF``).
    ``recurrent_delay``: steps on the back edge of a cycle that has no Delay node.
    ``rounding``: None, or "nir_to_lava" to put every population on the integer grid of the
    NIR paper's Lava script (12-bit decays int(d*4095), threshold int(v_th*131071) >> 9,
    weights int(w*256), state scale 4096), to reproduce its recorded fixed-point traces.
    """
    dt: float | None = None
    integrator: str | None = None
    reset: str | None = None
    reset_delay: bool | None = None
    convention: str | None = None
    recurrent_delay: int = 1
    rounding: str | None = None
    spike_compare: str | None = None
    notes: tuple[str, ...] = field(default=())

    def resolved(self) -> NirOptions:
        """The options with the convention's presets filled in, checked."""
        c = None
        if self.convention is not None:
            if self.convention not in CONVENTIONS:
                raise SnncError(f"unknown NIR convention {self.convention!r}; choose one of "
                                f"{', '.join(CONVENTIONS)}")
            c = CONVENTIONS[self.convention]
        dt = self.dt if self.dt is not None else (c.dt if c else None)
        if dt is None:
            raise SnncError("a NIR graph carries no time step: give dt (--dt), or a --convention "
                            f"that fixes one ({', '.join(k for k, v in CONVENTIONS.items() if v.dt)})")
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise SnncError(f"dt must be a positive number, got {dt!r}")
        integ = self.integrator or (c.integrator if c else "euler")
        if integ not in INTEGRATORS:
            raise SnncError(f"unknown integrator {integ!r}; choose euler or exact")
        reset = self.reset if self.reset is not None else (c.reset if c else None)
        if reset is not None and reset not in RESETS:
            raise SnncError(f"unknown reset {reset!r}; choose zero, subtract or none")
        rd = self.reset_delay if self.reset_delay is not None else (c.reset_delay if c else False)
        if self.recurrent_delay < 1 or int(self.recurrent_delay) != self.recurrent_delay:
            raise SnncError(f"recurrent_delay must be a whole number of steps >= 1, got {self.recurrent_delay}")
        if self.rounding not in (None, "nir_to_lava"):
            raise SnncError(f"unknown rounding {self.rounding!r}; the only one is 'nir_to_lava'")
        sc = self.spike_compare or (c.spike_compare if c else ">")
        if sc not in (">", ">="):
            raise SnncError(f"spike_compare must be '>' or '>=', got {sc!r}")
        return replace(self, dt=float(dt), integrator=integ, reset=reset, reset_delay=bool(rd),
                       spike_compare=sc)


# ----------------------------------------------------------------------------- reading
def _err(path: str, msg: str) -> SnncError:
    return SnncError(f"{os.path.basename(path)}: {msg}")


def read_nir(path: str):
    """``nir.read`` with clear errors (and a second try without nir's type check, which rejects
    some exporters' files for their shapes alone: snnc checks shapes itself)."""
    try:
        import nir
    except ImportError:  # pragma: no cover
        raise SnncError("reading .nir files needs the nir package (pip install nir)") from None
    if not os.path.exists(path):
        raise SnncError(f"{path}: no such file")
    import warnings
    try:
        import h5py
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise _err(path, "no group 'node': not a NIR graph file")
            version = f["version"][()] if "version" in f else b"?"
            in_file = set(f["node"]["nodes"].keys()) if "nodes" in f["node"] else set()
    except OSError as e:
        raise SnncError(f"{path}: not an HDF5 (NIR) file ({e})") from None
    version = version.decode() if isinstance(version, bytes) else str(version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            g = nir.read(path)
            # nir's type check adds an Input before every root: a bias-driven population has none
            added = [k for k, v in g.nodes.items() if k not in in_file and isinstance(v, nir.Input)]
            for k in added:
                g.nodes.pop(k)
                g.edges = [e for e in g.edges if e[0] != k]
            return g, version
        except Exception as first:
            try:
                return nir.read(path, type_check=False), version
            except Exception:
                raise _err(path, f"nir {nir.__version__ if hasattr(nir, '__version__') else ''} cannot "
                                 f"read it: {type(first).__name__}: {first}") from None


def _inline(path, graph, prefix=""):
    """Nested NIRGraphs inlined: (nodes {name: node}, edges, passthrough names)."""
    import nir
    nodes, edges, through = {}, [], set()
    io = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_through = _inline(path, node, full + ".")
            ins = [k for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise _err(path, f"nested graph {full!r} has {len(ins)} inputs and {len(outs)} outputs; "
                                 "snnc inlines subgraphs with one of each")
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            through |= sub_through | {f"{full}.{ins[0]}", f"{full}.{outs[0]}"}
            io[full] = (f"{full}.{ins[0]}", f"{full}.{outs[0]}")
        else:
            nodes[full] = node
    for s, d in graph.edges:
        s, d = _s(s), _s(d)
        s = io[prefix + s][1] if prefix + s in io else prefix + s
        d = io[prefix + d][0] if prefix + d in io else prefix + d
        edges.append((s, d))
    return nodes, edges, through


def _s(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def flatten_graph(path, graph):
    """The graph with subgraphs inlined and their pass-through Input/Output nodes removed."""
    nodes, edges, through = _inline(path, graph)
    for e in edges:
        for n in e:
            if n not in nodes:
                raise _err(path, f"edge {e[0]!r} -> {e[1]!r} names an unknown node {n!r}")
    for t in through:
        preds = [s for s, d in edges if d == t]
        succs = [d for s, d in edges if s == t]
        edges = [e for e in edges if t not in e] + [(p, q) for p in preds for q in succs]
        nodes.pop(t)
    seen, uniq = set(), []
    for e in edges:
        if e not in seen:
            seen.add(e)
            uniq.append(e)
    return nodes, uniq


# ----------------------------------------------------------------------------- neurons
def _arr(node, key, default=None):
    v = getattr(node, key, None)
    if v is None:
        return None if default is None else np.asarray(default, np.float64)
    return np.asarray(v, dtype=np.float64)


def _close(a, b, rtol=1e-5) -> bool:
    return bool(np.allclose(a, b, rtol=rtol, atol=1e-12))


@dataclass
class _Neuron:
    """A NIR neuron node's discrete form (the IR population and its input gain)."""
    name: str
    typ: str
    shape: tuple[int, ...]
    spiking: bool
    current_decay: np.ndarray
    voltage_decay: np.ndarray
    gain: np.ndarray                 # multiplies every input of the population, per neuron
    v_bias: np.ndarray               # constant added to v per step
    u_bias: np.ndarray               # constant added to u per step (through the bias unit)
    threshold: np.ndarray | None = None
    reset: str = "zero"
    reset_delay: bool = False
    output_delay: int = 0
    refractory: int = 0
    u_first: np.ndarray | None = None   # added to u at step 0 only (an initial membrane)
    spike_compare: str | None = None
    state_scale: int = 0


def _decay(dt, tau, integ, path, name, what):
    if np.any(np.isnan(tau)) or np.any(tau <= 0):
        raise _err(path, f"node {name!r}: {what} must be positive (inf: no leak), got {np.unique(tau)[:4].tolist()}")
    a = dt / tau if integ == "euler" else -np.expm1(-dt / tau)     # tau = inf: a = 0
    if np.any(a > 1):
        raise _err(path, f"node {name!r}: dt = {dt} exceeds {what} (min {float(np.min(tau)):g}): forward Euler "
                         "is unstable there (decay dt/tau > 1); use a smaller dt or --integrator exact")
    return a


def _neuron_shape(node, params) -> tuple[int, ...]:
    for key in ("output_type", "input_type"):
        t = getattr(node, key, None) or {}
        for v in t.values():
            v = tuple(int(x) for x in np.asarray(v).reshape(-1))
            if v and all(x > 0 for x in v):
                return v
    shapes = {tuple(p.shape) for p in params if p is not None and p.ndim}
    return shapes.pop() if len(shapes) == 1 else (1,)


def discretize(path: str, name: str, node, o: NirOptions) -> _Neuron:
    """One NIR neuron node -> its discrete parameters under options ``o`` (resolved)."""
    typ = type(node).__name__
    dt, integ, conv = o.dt, o.integrator, o.convention
    one = np.ones(())

    def refuse(msg):
        raise _err(path, f"node {name!r} ({typ}): {msg}")

    r = _arr(node, "r", 1.0)
    v_leak = _arr(node, "v_leak", 0.0)
    v_th = _arr(node, "v_threshold") if typ != "Threshold" else _arr(node, "threshold")
    v_reset = _arr(node, "v_reset", 0.0)
    shape = _neuron_shape(node, [r, v_leak, v_th, _arr(node, "tau"), _arr(node, "tau_mem")])
    cd, u_bias = one, np.zeros(())
    if typ in ("LIF", "LI"):
        tau = _arr(node, "tau")
        a = _decay(dt, tau, integ, path, name, "tau")
        vd, gain, v_bias = a, a * r, a * v_leak
        if conv == "spyx-2023":         # its synapse into a LIF is scaled by dt/tau, r not read
            gain = dt / tau
        if conv in ("norse", "lava"):
            if not _close(r, 1):
                refuse(f"r = {np.unique(r)[:3].tolist()}: {conv} ignores r (reads it as 1); this graph was "
                       "not written for it")
            gain = a
        if conv == "lava" and not _close(v_leak, 0):
            refuse("v_leak != 0: nir_to_lava.py does not read v_leak")
        _check_gain(refuse, conv, dt, r, tau, "r", "tau")
    elif typ in ("CubaLIF", "CubaLI"):
        tau_syn, tau_mem = _arr(node, "tau_syn"), _arr(node, "tau_mem")
        w_in = _arr(node, "w_in", 1.0)
        b = _decay(dt, tau_syn, integ, path, name, "tau_syn")
        a = _decay(dt, tau_mem, integ, path, name, "tau_mem")
        cd, vd = b, a
        with np.errstate(invalid="ignore"):
            # tau_syn = w_in = inf: the discrete convention's limit (a current that never leaks, unit gain)
            bw = np.where(np.isinf(tau_syn) & np.isinf(w_in), 1.0, b * w_in)
        gain, v_bias = a * r * bw, a * v_leak
        if conv == "norse":        # Norse's synapse is an LIBox with the neuron's v_leak
            u_bias = a * r * b * v_leak
        if conv == "lava":
            refuse("nir_to_lava.py reads only LIF neurons in Lava (CubaLIF went through lava-dl)")
        if conv in ("sinabs", "spikingjelly"):
            refuse(f"{conv}'s from_nir reads no CubaLIF (Sinabs: LIF, LI, IF; SpikingJelly: LIF, IF)")
        if conv == "spyx-2023":
            refuse("snnc reproduces the 2023 Spyx (spyx-2023) for LIF only; choose --convention spyx "
                   "(Spyx 1.0) for a CubaLIF")
        _check_gain(refuse, conv, dt, r, tau_mem, "r", "tau_mem")
        _check_gain(refuse, conv, dt, w_in, tau_syn, "w_in", "tau_syn")
        shape = _neuron_shape(node, [tau_syn, tau_mem, r, v_leak])
    elif typ in ("IF", "I"):
        vd, gain, v_bias = np.zeros(()), dt * r, np.zeros(())
        if conv == "norse":
            if not _close(r, 1):
                refuse(f"r = {np.unique(r)[:3].tolist()}: Norse's IAFCell ignores r (v += I)")
            gain = np.ones(())
        if conv == "snntorch":
            refuse("snnTorch reads IF as Leaky(beta=0.9) (a leak the graph does not have) and never "
                   "writes IF; choose the convention of the exporter (sinabs, norse, spikingjelly)")
        if conv == "spikingjelly" and typ == "IF" and not _close(r * dt, 1):
            refuse(f"SpikingJelly writes IF with r = 1/dt = {1 / dt:g}, the graph has r = {np.unique(r)[:3].tolist()}")
        if conv == "sinabs" and not _close(r, 1):
            refuse(f"Sinabs writes IF with r = 1, the graph has {np.unique(r)[:3].tolist()}")
        if conv in ("sinabs", "spyx", "spyx-2023"):     # v += I (weights as written)
            gain = np.ones(())
    elif typ == "Threshold":
        vd, gain, v_bias = np.ones(()), np.ones(()), np.zeros(())
    else:  # pragma: no cover (callers pass neuron types only)
        refuse("not a neuron")
    spiking = typ in ("LIF", "CubaLIF", "IF", "Threshold")
    if conv == "snntorch" and not _close(v_leak, 0):
        refuse("snnTorch writes v_leak = 0 and cannot read another value")
    if conv in ("sinabs", "spyx", "spyx-2023") and not _close(v_leak, 0):
        refuse(f"v_leak = {np.unique(v_leak)[:3].tolist()}: {conv} does not run v_leak (Sinabs' from_nir "
               "refuses it, Spyx ignores it)")
    if conv == "spikingjelly" and typ in ("LIF", "IF"):
        for key, val in (("tau", _arr(node, "tau")), ("r", r), ("v_threshold", v_th), ("v_reset", v_reset)):
            if val is not None and np.unique(val).size > 1:
                refuse(f"per-neuron {key}: SpikingJelly's from_nir takes one value per layer")
    if conv == "sinabs" and typ in ("LIF", "LI") and not _close(r, 1):
        refuse(f"Sinabs writes r = 1, the graph has {np.unique(r)[:3].tolist()}")
    if conv in ("spyx", "rockpool", "sinabs"):     # weights as written (Sinabs: norm_input=False)
        gain = np.ones(()) if typ not in ("IF", "I", "Threshold") else gain
    if conv == "rockpool" and typ in ("LIF", "LI", "CubaLIF", "CubaLI"):
        v_bias = v_leak                            # LIFTorch/LIFNeuronTorch: v += bias (= v_leak)
        if typ in ("CubaLIF", "CubaLI"):           # LIFTorch: isyn = beta (isyn + x)
            gain = 1 - cd
    reset = o.reset
    if spiking and typ != "Threshold":
        if reset is None:
            if not _close(v_reset, 0):
                refuse(f"v_reset = {np.unique(v_reset)[:3].tolist()}: snnc's neurons reset to 0 or by "
                       "subtraction, not to another potential")
            reset = "zero"
        elif reset == "zero" and not _close(v_reset, 0):
            refuse(f"v_reset = {np.unique(v_reset)[:3].tolist()} != 0: a zero reset contradicts the graph")
        elif reset == "subtract" and not _close(v_reset, 0):
            refuse(f"v_reset = {np.unique(v_reset)[:3].tolist()}: a reset to a potential contradicts "
                   "--reset subtract")
    if typ == "Threshold":
        reset = "zero"
    if conv == "snntorch" and reset == "subtract" and not o.reset_delay and typ != "Threshold":
        reset = "subtract_snntorch"    # snnTorch 1.0's reset_delay=False rule exactly (ir.CubaLIF)
    reset_delay = bool(o.reset_delay)
    if conv == "spyx" and typ == "CubaLIF":
        reset_delay = False            # V = beta (V - thr s) + I: the subtraction at the crossing
    if spiking and v_th is None:
        refuse("no v_threshold")
    gain = np.where(np.abs(gain - 1) < GAIN_SNAP, 1.0, gain)
    u_first = None
    if conv and CONVENTIONS[conv].v_starts_at_leak and not _close(v_leak, 0):
        if typ not in ("LIF", "LI"):
            refuse("Norse starts the membrane (and the synaptic current) at v_leak != 0; snnc holds that "
                   "for LIF/LI only")
        u_first = (1 - vd) * v_leak        # v[0] = v_leak + a I, as from v[-1] = v_leak
    n = _Neuron(name, typ, tuple(shape), spiking, _bc(cd, shape, refuse), _bc(vd, shape, refuse),
                _bc(gain, shape, refuse), _bc(v_bias, shape, refuse), _bc(u_bias, shape, refuse),
                _bc(v_th, shape, refuse) if spiking else None, reset or "zero",
                reset_delay if spiking and typ != "Threshold" else False,
                CONVENTIONS[conv].output_delay if conv and spiking else 0)
    n.u_first = None if u_first is None else _bc(u_first, shape, refuse)
    return n


def _check_gain(refuse, conv, dt, x, tau, xname, tname):
    """snnTorch/SpikingJelly write the discrete convention x = tau/dt (unit gain): check it."""
    if conv in ("snntorch", "spikingjelly") and not _close(x * dt / tau, 1):
        if conv == "spikingjelly" and xname == "r" and tname == "tau" and _close(x, 1):
            return
        refuse(f"{conv} writes {xname} = {tname}/dt (dt = {dt:g}); the graph has {xname}*dt/{tname} = "
               f"{np.unique(x * dt / tau)[:3].tolist()}: it was not written by {conv} at this dt")
    if conv == "rockpool" and xname == "r" and not _close(x, tau * np.exp(-dt / tau) / dt):
        refuse(f"Rockpool writes r = tau exp(-dt/tau)/dt; the graph has r = {np.unique(x)[:3].tolist()}")


def _bc(x, shape, refuse):
    x = np.asarray(x, np.float64)
    try:
        return np.broadcast_to(x, shape).copy()
    except ValueError:
        refuse(f"parameters of shape {x.shape} do not fit the neurons {shape}")


def _scalar(x: np.ndarray):
    """A uniform array as a float, else the array."""
    x = np.asarray(x, np.float64)
    return float(x.reshape(-1)[0]) if x.size and np.all(x == x.reshape(-1)[0]) else x


# ----------------------------------------------------------------------------- paths
@dataclass
class _Path:
    """A connection source -> linear ops -> population (or Output), as one IR synapse."""
    src: str
    ops: list[str]
    dst: str


class _Importer:
    def __init__(self, path: str, nodes, edges, o: NirOptions):
        self.path, self.nodes, self.edges, self.o = path, nodes, edges, o
        self.g = Graph()
        self.notes: list[str] = []
        self.neurons: dict[str, _Neuron] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.preds = {k: [s for s, d in edges if d == k] for k in nodes}
        self.succs = {k: [d for s, d in edges if s == k] for k in nodes}
        self.u_bias: dict[str, np.ndarray] = {}
        self.snnc_meta = False           # the file is snnc's, written at this dt: its metadata is exact

    def err(self, msg):
        return _err(self.path, msg)

    def typ(self, name):
        return type(self.nodes[name]).__name__

    # ---- classification
    def check_types(self):
        for name, node in self.nodes.items():
            t = type(node).__name__
            if t == "Conv1d":
                raise self.err(f"node {name!r} (Conv1d): snnc's IR has no 1-D convolution (shapes are (C,) or "
                               "(C, H, W)); export the model with Conv2d of height 1")
            if t not in NEURON_TYPES + LINEAR_TYPES + ("Input", "Output"):
                raise self.err(f"node {name!r}: NIR type {t} is not supported")

    def paths_into(self, dst) -> list[_Path]:
        """Every path source -> linear ops -> ``dst`` (sources: Inputs and neurons)."""
        out: list[_Path] = []

        def walk(node, ops, seen):
            for p in self.preds[node]:
                t = self.typ(p)
                if t in LINEAR_TYPES:
                    if p in seen:
                        raise self.err(f"a cycle of linear nodes through {p!r} with no neuron: it has no meaning")
                    walk(p, [p] + ops, seen | {p})
                elif t in NEURON_TYPES or t == "Input":
                    out.append(_Path(p, ops, dst))
                else:
                    raise self.err(f"node {p!r} ({t}) cannot feed {node!r}")
        walk(dst, [], set())
        if not out and self.typ(dst) == "Output":
            raise self.err(f"output {dst!r} has no input")
        return out

    def back_edges(self, paths: list[_Path]):
        """Paths that close a cycle (depth-first from the inputs, in file order)."""
        succ: dict[str, list[_Path]] = {}
        for p in paths:
            succ.setdefault(p.src, []).append(p)
        state, back = {}, set()

        def dfs(n):
            state[n] = 1
            for p in succ.get(n, []):
                if state.get(p.dst) == 1:
                    back.add(id(p))
                elif p.dst not in state:
                    dfs(p.dst)
            state[n] = 2
        starts = [k for k in self.nodes if self.typ(k) == "Input"]
        for s in starts + list(self.nodes):
            if s not in state and (s in starts or self.typ(s) in NEURON_TYPES):
                dfs(s)
        return back

    # ---- build
    def run(self) -> Graph:
        self.check_types()
        o = self.o
        for name, node in self.nodes.items():
            t = type(node).__name__
            if t == "Input":
                shape = _io_shape(node, "input_type")
                if not shape:
                    raise self.err(f"input {name!r} has no shape")
                kind = "spikes"
                if self.snnc_meta and _s((getattr(node, "metadata", None) or {}).get("snnc.kind", b"spikes")) == "bias":
                    kind = "bias"               # snnc's own file: a per-step drive of v (netx input layers)
                self.g.add(name, Input(shape, kind=kind))
                self.shapes[name] = shape
            elif t in NEURON_TYPES:
                self.neurons[name] = discretize(self.path, name, node, o)
                self.shapes[name] = self.neurons[name].shape
                if self.snnc_meta:
                    self._exact_from_metadata(name, node, self.neurons[name])
        if not self.g.inputs:
            raise self.err("the graph has no Input node")
        targets = [k for k in self.nodes if self.typ(k) in NEURON_TYPES or self.typ(k) == "Output"]
        paths = [p for t in targets for p in self.paths_into(t)]
        back = self.back_edges([p for p in paths if self.typ(p.dst) != "Output"])
        if o.convention and CONVENTIONS[o.convention].rsynaptic_late_reset:
            self._rsynaptic(paths, back)
        if o.convention == "sinabs" and any(n.spiking for n in self.neurons.values()):
            self.notes.append("Sinabs' from_nir emits trunc(v/threshold) spikes per step (MultiSpike) and floors an "
                              "IF's v at -threshold (min_v_mem); snnc emits one spike per step and does not floor "
                              "v: they agree while v stays in [-threshold, 2 threshold) (docs/nir.md)")
        for n in self.neurons.values():
            self._add_population(n)
        for p in paths:
            if self.typ(p.dst) == "Output":
                continue
            self._connect(p, id(p) in back)
        self._bias_unit()
        for name in self.nodes:
            if self.typ(name) == "Output":
                self._output(name, [p for p in paths if p.dst == name])
        return self.g

    def _rsynaptic(self, paths, back):
        """snnTorch's RSynaptic (a CubaLIF with a back edge to itself) resets one step late."""
        for p in paths:
            n = self.neurons.get(p.dst)
            if id(p) in back and p.src == p.dst and n is not None and n.typ == "CubaLIF" and n.spiking:
                if n.reset == "zero" and not n.reset_delay:
                    n.refractory = 1
                elif n.reset in ("subtract", "subtract_snntorch"):
                    n.reset, n.reset_delay = "subtract", True
                self.notes.append(f"{n.name}: an snnTorch RSynaptic resets one step late (snnTorch 1.0.0)")

    def _exact_from_metadata(self, name, node, n: _Neuron):
        """snnc's own file: the exact IR values from the node's metadata, once checked to agree
        with its NIR parameters (at the same dt); reset mode too unless an option sets one."""
        m = {k: (_s(v) if isinstance(v, bytes) else v) for k, v in (getattr(node, "metadata", None) or {}).items()}
        if int(np.asarray(m.get("snnc.graded", 0))):
            raise SnncError(f"NIR node {name!r}: snnc.graded (spikes carrying v/state_scale) is not supported by "
                            "any engine; export binary spikes")
        if "snnc.voltage_decay" not in m:
            return
        vals = {k: np.broadcast_to(np.asarray(m[f"snnc.{k}"], np.float64), n.shape)
                for k in ("current_decay", "voltage_decay", "bias")}
        ok = (np.allclose(vals["current_decay"], n.current_decay, rtol=1e-9, atol=1e-15)
              and np.allclose(vals["voltage_decay"], n.voltage_decay, rtol=1e-9, atol=1e-15)
              and np.allclose(vals["bias"], n.v_bias, rtol=1e-9, atol=1e-12) and np.all(n.gain == 1))
        if not ok:
            self.notes.append(f"{name}: its snnc metadata disagrees with its parameters; the parameters are used")
            return
        n.current_decay, n.voltage_decay, n.v_bias = (vals[k].copy() for k in ("current_decay", "voltage_decay",
                                                                               "bias"))
        n.state_scale = int(np.asarray(m.get("snnc.state_scale", 0)))
        if n.spiking and self.o.reset is None and "snnc.reset" in m:
            n.reset = str(m["snnc.reset"])
            n.reset_delay = bool(int(np.asarray(m.get("snnc.reset_delay", 0))))
            n.refractory = int(np.asarray(m.get("snnc.refractory", 0)))
            n.spike_compare = str(m.get("snnc.spike_compare", ">"))

    def _add_population(self, n: _Neuron):
        sc = {"state_scale": int(n.state_scale)}
        if n.spiking:
            node = CubaLIF(n.shape, current_decay=_scalar(n.current_decay), voltage_decay=_scalar(n.voltage_decay),
                           threshold=_scalar(n.threshold), bias=_scalar(n.v_bias), reset=n.reset,
                           reset_delay=n.reset_delay, refractory=n.refractory,
                           spike_compare=n.spike_compare or (self.o.spike_compare if n.typ != "Threshold" else ">"),
                           **sc)
        else:
            node = CubaLI(n.shape, current_decay=_scalar(n.current_decay), voltage_decay=_scalar(n.voltage_decay),
                          bias=_scalar(n.v_bias), **sc)
        self.g.add(n.name, node)
        if np.any(n.u_bias):
            self.u_bias[(n.name, 0)] = n.u_bias.copy()
        if n.u_first is not None:       # an impulse at step 0: +c from step 0, -c from step 1
            self.u_bias[(n.name, 0)] = self.u_bias.get((n.name, 0), np.zeros(n.shape)) + n.u_first
            self.u_bias[(n.name, 1)] = self.u_bias.get((n.name, 1), np.zeros(n.shape)) - n.u_first
            self.notes.append(f"{n.name}: the membrane starts at v_leak (an input impulse at step 0)")

    def _syn_name(self, base: str, p: _Path) -> str:
        name = base
        if name in self.g.nodes:
            name = f"{base}>{p.dst}" if f"{base}>{p.dst}" not in self.g.nodes else f"{base}<{p.src}>{p.dst}"
        return name

    def _connect(self, p: _Path, recurrent: bool):
        """Source -> [Delay] -> [SumPool2d] -> [Flatten] -> synapse (gain folded in) -> population."""
        n = self.neurons[p.dst]
        steps, weight_op, pre, post_scale, flat = 0, None, [], np.ones(()), False
        bias = None
        src_shape = self.shapes[p.src]
        for op in p.ops:
            node, t = self.nodes[op], self.typ(op)
            if t == "Delay":
                d = self._delay_steps(op)
                if weight_op is not None and np.ndim(d) and np.unique(d).size > 1:
                    raise self.err(f"delay {op!r}: per-neuron delays after the synapse {weight_op[0]!r} "
                                   "cannot be moved before it (snnc delays a synapse's input)")
                steps = steps + (np.unique(d)[0] if weight_op is not None and np.ndim(d) else d)
                if weight_op is not None and bias is not None and np.any(bias):
                    raise self.err(f"delay {op!r} after the biased synapse {weight_op[0]!r}: the bias would "
                                   "start late; snnc cannot hold that")
            elif t == "Scale":
                s = np.asarray(node.scale, np.float64)
                if weight_op is None:
                    pre.append(("scale", op, s))
                else:
                    post_scale = post_scale * s
            elif t == "Flatten":
                if weight_op is not None:
                    raise self.err(f"flatten {op!r} after the synapse {weight_op[0]!r}: snnc flattens a "
                                   "synapse's input only")
                flat = True
            elif t in ("SumPool2d", "AvgPool2d"):
                if weight_op is None and not flat:
                    pre.append(("pool", op, None))
                else:
                    weight_op, bias = self._compose(weight_op, bias, (op, t), p)
            else:
                weight_op, bias = self._compose(weight_op, bias, (op, t), p)
        if (not p.ops and self.typ(p.src) == "Input" and self.g.nodes[p.src].kind == "bias"):
            if not (np.all(n.gain == 1) and np.all(n.current_decay == 1)):
                raise self.err(f"bias input {p.src!r} feeds {p.dst!r}, which has an input gain or a current")
            self.g.edges.append((p.src, p.dst))
            return
        if weight_op is None and pre and pre[-1][0] == "pool":       # pooling straight into neurons
            weight_op = (pre[-1][1], "pool", self.nodes[pre[-1][1]])
            pre = pre[:-1]
        src = p.src
        out_delay = self.neurons[src].output_delay if src in self.neurons else 0
        if recurrent and not any(self.typ(op) == "Delay" for op in p.ops) and not out_delay:
            steps = steps + self.o.recurrent_delay     # (a spike emitted late is already last step's)
        gain = n.gain * np.broadcast_to(post_scale, n.shape) if np.ndim(post_scale) else n.gain * post_scale
        steps = steps + out_delay
        base = weight_op[0] if weight_op else (p.ops[-1] if p.ops else f"{p.src}>{p.dst}")
        name = self._syn_name(base, p)
        if np.any(np.asarray(steps) > 0):
            src = self.g.add(f"{name}.delay", Delay(np.asarray(steps, np.int64)), src)
        shape = src_shape
        for kind, op, val in pre:
            if kind == "pool":
                src = self.g.add(f"{name}.{op}", self._pool(op), src)
                shape = self.g.nodes[src].output_shape(shape)
            else:           # a Scale before the synapse: into its input columns (Dense) below
                if weight_op is None or weight_op[1] != "dense":
                    if weight_op is None:
                        gain = gain * np.broadcast_to(val, n.shape)
                        continue
                    raise self.err(f"scale {op!r} before the convolution {weight_op[0]!r}: not supported")
        if flat:
            src = self.g.add(f"{name}.flatten", Flatten(), src)
            shape = (int(np.prod(shape)),)
        syn = self._synapse(p, weight_op, gain, shape, n, pre)
        self.g.add(name, syn, src)
        self.g.edges.append((name, p.dst))
        if bias is not None and np.any(bias):
            if recurrent and self.o.convention in ("spyx", "spyx-2023"):
                raise self.err(f"the recurrent synapse {weight_op[0]!r} into {p.dst!r} has a bias, which Spyx's "
                               "from_nir drops (it loads the recurrent weight only); this graph does not run in "
                               "Spyx as written")
            b = np.broadcast_to(bias, n.shape) * gain
            conv = CONVENTIONS.get(self.o.convention)
            late = recurrent and conv is not None and conv.back_edge_bias_late
            self._constant_input(n, b, int(np.max(steps)) if late else 0)

    def _delay_steps(self, op):
        d = np.asarray(self.nodes[op].delay, np.float64) / self.o.dt
        k = np.round(d)
        if np.any(np.abs(d - k) > 1e-6 * np.maximum(1, k)) or np.any(k < 0):
            raise self.err(f"delay {op!r}: {np.unique(d * self.o.dt)[:3].tolist()} is not a whole number of "
                           f"steps of dt = {self.o.dt:g}")
        return k.astype(np.int64) if k.ndim else int(k)

    def _compose(self, weight_op, bias, new, p):
        """The synapse so far, then ``new`` (Affine/Linear/Conv2d/pool): one synapse or refuse."""
        op, t = new
        node = self.nodes[op]
        if t in ("Affine", "Linear"):
            w = np.asarray(node.weight, np.float64)
            b = np.asarray(node.bias, np.float64) if t == "Affine" and node.bias is not None else np.zeros(w.shape[0])
            if w.ndim != 2:
                raise self.err(f"{t} {op!r}: weight of shape {w.shape}; snnc reads 2-D (out, in) weights")
            if weight_op is None:
                return (op, "dense", w), b
            if weight_op[1] != "dense":
                raise self.err(f"{t} {op!r} after {weight_op[0]!r}: two synapses in a row with no neuron "
                               "between (only Affine/Linear pairs are multiplied into one)")
            w0 = weight_op[2]
            self.notes.append(f"{weight_op[0]} and {op} multiplied into one synapse")
            return (op, "dense", w @ w0), w @ bias + b
        if t == "Conv2d":
            if weight_op is not None:
                raise self.err(f"Conv2d {op!r} after {weight_op[0]!r}: two synapses in a row with no neuron "
                               "between")
            b = np.asarray(node.bias, np.float64) if node.bias is not None else None
            return (op, "conv", node), (None if b is None else b.reshape(-1, 1, 1))
        if t in ("SumPool2d", "AvgPool2d"):
            if weight_op is not None:
                raise self.err(f"{t} {op!r} after {weight_op[0]!r}: pooling after a synapse with no neuron "
                               "between")
            return (op, "pool", node), None
        raise self.err(f"node {op!r} ({t}) cannot be a synapse")  # pragma: no cover

    def _pool(self, op) -> SumPool2d:
        node, t = self.nodes[op], self.typ(op)
        k = _pair(node.kernel_size)
        s = _pair(node.stride) if node.stride is not None else k
        pad = _pair(node.padding) if node.padding is not None else (0, 0)
        w = 1.0 / (k[0] * k[1]) if t == "AvgPool2d" else 1.0
        return SumPool2d(k, s, pad, w)

    def _synapse(self, p, weight_op, gain, in_shape, n: _Neuron, pre):
        """The IR synapse of path ``p`` with the population's input gain folded in."""
        out_shape = n.shape
        if weight_op is None:
            return self._identity(p, gain, in_shape, out_shape)
        op, kind = weight_op[0], weight_op[1]
        if kind == "dense":
            w = weight_op[2]
            for k, _, val in pre:
                if k == "scale":
                    w = w * np.broadcast_to(val, (w.shape[1],))[None, :]
            if len(out_shape) != 1 or w.shape[0] != out_shape[0]:
                raise self.err(f"{self.typ(op)} {op!r}: {w.shape[0]} outputs feed {p.dst!r} of shape {out_shape}")
            if len(in_shape) != 1:
                raise self.err(f"{self.typ(op)} {op!r}: its input {p.src!r} has shape {in_shape}; a Flatten is "
                               "needed before it")
            if w.shape[1] != in_shape[0]:
                raise self.err(f"{self.typ(op)} {op!r}: weight {w.shape} reads {w.shape[1]} values, its input "
                               f"{p.src!r} has {in_shape[0]}")
            return Dense(w * gain[:, None] if np.any(gain != 1) else w)
        g = self._channel_gain(op, gain, out_shape)
        if kind == "pool":
            pool = self._pool(op)
            if np.all(g == g[0]):
                return replace(pool, weight=pool.weight * float(g[0]))
            c = in_shape[0]
            w = pool.as_conv_weight(c) * g[:, None, None, None]
            return Conv2d(w, pool.stride, pool.padding, (1, 1), c)
        node = weight_op[2]
        w = np.asarray(node.weight, np.float64)
        if w.ndim != 4:
            raise self.err(f"Conv2d {op!r}: weight of shape {w.shape}; expected (out, in/groups, kh, kw)")
        stride, dil = _pair(node.stride), _pair(node.dilation)
        pad = _padding(self.err, op, node.padding, w.shape[2:], stride, dil)
        conv = Conv2d(w * g[:, None, None, None] if np.any(g != 1) else w, stride, pad, dil, int(node.groups))
        return conv

    def _channel_gain(self, op, gain, shape):
        if len(shape) != 3:
            raise self.err(f"{op!r} feeds {shape}: a convolution or pooling needs (C, H, W) neurons")
        g = gain.reshape(shape[0], -1)
        if np.any(g != g[:, :1]):
            raise self.err(f"{op!r}: the input gain of the neurons it feeds varies within a channel; a "
                           "convolution can hold one gain per channel only")
        return g[:, 0]

    def _identity(self, p, gain, in_shape, out_shape):
        """A source wired straight into a population: a one-to-one synapse of weight ``gain``."""
        if tuple(in_shape) != tuple(out_shape):
            raise self.err(f"{p.src!r} of shape {in_shape} feeds {p.dst!r} of shape {out_shape} directly")
        self.notes.append(f"{p.src} -> {p.dst}: a one-to-one synapse added (Loihi neurons take input "
                          "through synapses)")
        if len(out_shape) == 1:
            return Dense(np.diag(gain.reshape(-1)))
        g = self._channel_gain(f"{p.src}->{p.dst}", gain, out_shape)
        return Conv2d(g.reshape(-1, 1, 1, 1), (1, 1), (0, 0), (1, 1), out_shape[0])

    def _constant_input(self, n: _Neuron, b: np.ndarray, start: int = 0):
        """A constant input b per step from step ``start`` on: v's bias without current state (from
        step 0), else through the bias unit (and a Delay of ``start`` steps)."""
        if np.all(n.current_decay == 1) and start == 0:
            pop = self.g.nodes[n.name]
            self.g.nodes[n.name] = replace(pop, bias=_scalar(np.broadcast_to(pop.bias, n.shape) + b))
        else:
            key = (n.name, start)
            self.u_bias[key] = self.u_bias.get(key, np.zeros(n.shape)) + b

    def _bias_unit(self):
        if not self.u_bias:
            return
        self.g.add(BIAS_UNIT, CubaLIF((1,), current_decay=1.0, voltage_decay=1.0, threshold=0.5, bias=1.0,
                                      state_scale=4096))
        for (pop, start), b in self.u_bias.items():
            if len(self.shapes[pop]) != 1:
                raise self.err(f"population {pop!r} of shape {self.shapes[pop]}: a constant input into its "
                               "current (bias) needs 1-D neurons")
            name, src = f"{BIAS_UNIT}>{pop}", BIAS_UNIT
            if start:
                name = f"{name}@{start}"
                src = self.g.add(f"{name}.delay", Delay(np.asarray(start, np.int64)), src)
            self.g.add(name, Dense(b.reshape(-1, 1)), src)
            self.g.edges.append((name, pop))
        pops = sorted({p for p, _ in self.u_bias})
        self.notes.append(f"constant inputs into a synaptic current ({', '.join(pops)}) come from "
                          f"{BIAS_UNIT!r}, one neuron that spikes every step")

    def _output(self, name, paths):
        if len(paths) != 1:
            raise self.err(f"output {name!r} reads {len(paths)} sources; snnc outputs one population each")
        p = paths[0]
        steps = 0
        for op in p.ops:
            if self.typ(op) != "Delay":
                raise self.err(f"output {name!r} reads {op!r} ({self.typ(op)}): an output reads a population's "
                               "spikes (or a read-out's v), not a synapse")
            steps += int(np.max(self._delay_steps(op)))
        src = p.src
        if src in self.neurons:
            steps += self.neurons[src].output_delay
        if steps:
            src = self.g.add(f"{name}.delay", Delay(np.asarray(steps, np.int64)), src)
        self.g.add(name, Output(tuple(self.shapes[p.src])), src)


def _pair(v) -> tuple[int, int]:
    a = np.asarray(v).reshape(-1)
    if a.size == 1:
        return (int(a[0]), int(a[0]))
    return (int(a[0]), int(a[1]))


def _padding(err, op, pad, kernel, stride, dil):
    if isinstance(pad, (bytes, str)):
        pad = _s(pad)
        if pad == "valid":
            return (0, 0)
        if pad == "same" and stride == (1, 1) and all(k % 2 for k in kernel):
            return tuple(int(d * (k - 1) // 2) for k, d in zip(kernel, dil))
        raise err(f"Conv2d {op!r}: padding {pad!r} with kernel {tuple(kernel)}, stride {stride} is not supported")
    return _pair(pad)


def _io_shape(node, key) -> tuple[int, ...]:
    t = getattr(node, key, None) or {}
    for v in t.values():
        return tuple(int(x) for x in np.asarray(v).reshape(-1))
    return ()


# ----------------------------------------------------------------------------- rounding
def round_nir_to_lava(graph: Graph) -> Graph:
    """Every CubaLIF on the integer grid of the NIR paper's ``nir_to_lava.py`` (fixed_pt):
    decay_u = int(current_decay * 4095) + 1 (Lava adds 1 to du), decay_v = int(voltage_decay * 4095),
    vth = int(threshold * 131071) >> 9, weights int(w * 256), state scale 4096 (so that snnc's
    quantization gives exactly these integers)."""
    g = graph.copy()
    for name, node in graph.nodes.items():
        if not isinstance(node, CubaLIF) or name == BIAS_UNIT:
            continue
        du = (np.floor(np.asarray(node.current_decay) * 4095) + 1) / 4096
        dv = np.floor(np.asarray(node.voltage_decay) * 4095) / 4096
        vth = np.right_shift(np.floor(np.asarray(node.threshold, np.float64) * 131071).astype(np.int64), 9) / 64
        if np.any(np.asarray(node.bias) != 0):
            raise SnncError(f"population {name!r}: nir_to_lava.py runs no bias")
        g.nodes[name] = replace(node, current_decay=_scalar(du), voltage_decay=_scalar(dv), threshold=_scalar(vth),
                                state_scale=4096)
        for s in graph.predecessors(name):
            syn = graph.nodes[s]
            if isinstance(syn, (Dense, Conv2d)):
                w = np.trunc(np.asarray(syn.weight, np.float64) * 256) / 64
                g.nodes[s] = replace(syn, weight=w)
    return g


# ----------------------------------------------------------------------------- entry point
def import_nir(path: str, dt: float | None = None, convention: str | None = None,
               integrator: str | None = None, reset: str | None = None,
               reset_delay: bool | None = None, recurrent_delay: int = 1,
               rounding: str | None = None, spike_compare: str | None = None) -> Graph:
    """Read a NIR graph file into an (unquantized) IR graph; options as :class:`NirOptions`."""
    graph, version = read_nir(path)
    meta = {k: (_s(v) if isinstance(v, bytes) else v) for k, v in (getattr(graph, "metadata", None) or {}).items()}
    own = meta.get("writer") == "snnc" and "dt" in meta
    if own and dt is None and convention is None:
        dt = float(np.asarray(meta["dt"]))          # snnc writes its dt (NIR has no field for it)
    o = NirOptions(dt=dt, integrator=integrator, reset=reset, reset_delay=reset_delay, convention=convention,
                   recurrent_delay=recurrent_delay, rounding=rounding, spike_compare=spike_compare).resolved()
    nodes, edges = flatten_graph(path, graph)
    imp = _Importer(path, nodes, edges, o)
    imp.snnc_meta = own and o.dt == float(np.asarray(meta["dt"])) and o.integrator == "euler" and convention is None
    g = imp.run()
    if o.rounding == "nir_to_lava":
        g = round_nir_to_lava(g)
    try:
        g.shapes()
    except SnncError as e:
        raise _err(path, str(e)) from None
    g.metadata.update(dict(
        format="nir", nir_version=version, convention=o.convention, dt=o.dt, integrator=o.integrator,
        reset=o.reset or "zero (v_reset = 0)", reset_delay=o.reset_delay, recurrent_delay=o.recurrent_delay,
        rounding=o.rounding, spike_compare=o.spike_compare, timing="library",
        nir_notes=list(dict.fromkeys(imp.notes))))
    return g
