"""Mapping pass: quantized IR -> placement of every population onto Loihi 2 cores and chips.

Deterministic: the same graph and resource model always give the same map.

Populations: every population of the lowered network (``snnc.compiler.lower``: ``CubaLIF``,
``CubaLI`` read-outs, and the sigma-delta nodes ``Delta`` input encoder, ``SigmaDelta``, ``Sigma``
output, as netx builds an SDNN); its connections are what the cores store. All of them are Lava
processes of the network and run on neuro-cores (docs/loihi2-resources.md, "Sigma-delta"). A
``Delta`` reads the host's data directly (a direct link of the lowered network); that host input
is counted as one input axon and one synapse word per neuron (an identity connection; an
assumption). Synapses reading graded messages (``num_message_bits`` > 0) are counted like binary
ones (the weights are what a core stores); the message width is checked
against Lava's 24-bit graded ports.

1. Tiling. Each population is cut into tiles, one tile per core at most:
   - a 1-D population (fed by Dense synapses) into equal runs of neurons;
   - a (C, H, W) population (fed by Conv2d / SumPool2d) into (channels x rows x columns) blocks.
   The tile is the largest one whose neurons, neuron state and synapse memory fit a core; among
   the tilings with the fewest cores, the one keeping the most channels and rows together wins.
   Synapse memory counts what a core really stores (see docs/loihi2-resources.md):
   - Dense: one synapse list per input axon, with the tile's neurons packed at the weight's bit
     width into 64-bit words: ``in_features * ceil(n * bits / 64)``;
   - Conv2d: weights are shared, stored once per core: ``(Cin/groups) * kh * kw *
     ceil(channels_in_tile * bits / 64)`` per group in the tile;
   - SumPool2d: a depthwise conv with one weight: ``channels * kh * kw`` words.
   Neuron state: ``n * (state bytes + accumulator bytes * (max delay + 1))``, where the delay is
   the synaptic delay on the core: an IR delay of d steps minus the one step every Loihi
   synapse takes anyway, and the state bytes are the neuron model's (CUBA: u, v; SigmaDelta:
   sigma, act, residue, bias [+ error]; Delta: act, residue [+ error]; Sigma: sigma).
2. Axons. Dense inputs need one input axon per presynaptic neuron (a neuron's synapses all live
   on its core, so a dense fan-in above the core's axon limit cannot be split); convolutional
   inputs share one axon per (source core, destination core) pair. Output axon entries: a dense
   destination needs one per source neuron and destination core; a conv destination one per
   destination core. A core over its output-axon limit makes its population's tiles smaller.
3. Packing. Tiles go onto cores first-fit in graph order: a tile shares a core when every summed
   resource still fits (small layers share; large layers' tiles fill their own cores).
4. Chips. Cores are numbered in graph order and filled onto chips 128 at a time, so consecutive
   layers stay on one chip and only the layers at a boundary send spikes between chips.

``map_graph`` raises ``SnncError`` naming the layer, the limit and what would fit when the
network cannot be placed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import SnncError
from .ir import Conv2d, Delta, Dense, Graph, Sigma, SigmaDelta, _pair
from .lower import Connection, Network, Population, lower
from .notes import custom_neuron_programs
from .pipeline import ensure_compiled
from .resources import CORE_LIMITS, DEFAULT_SYSTEM, LIMIT_WORDS, LOIHI2, SYSTEMS, Loihi2Resources


# ----------------------------------------------------------------------------------------------
# data

@dataclass
class SynInput:
    """One synaptic input of a population, traced back to its source."""
    synapse: str
    kind: str                   # "dense" | "conv" | "pool" | "host" (host data into a Delta)
    source: str                 # population or Input node name
    source_is_input: bool
    bits: int
    max_delay: int
    in_features: int = 0        # dense
    cin_per_group: int = 0      # conv / pool
    kernel: Tuple[int, int] = (1, 1)
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)
    groups: int = 1
    out_channels: int = 0
    message_bits: int = 0       # > 0: graded messages (Lava num_message_bits); 0: binary spikes


@dataclass
class Tile:
    """A block of one population placed on one core: ``box`` = ((c0,c1),(h0,h1),(w0,w1)) for
    (C,H,W) populations, ((n0,n1),) for 1-D ones (half-open ranges)."""
    pop: str
    index: int
    box: Tuple[Tuple[int, int], ...]
    usage: Dict[str, int] = field(default_factory=dict)
    core: int = -1

    @property
    def neurons(self) -> int:
        return int(np.prod([b - a for a, b in self.box]))


@dataclass
class Core:
    id: int
    chip: int
    tiles: List[int] = field(default_factory=list)     # indices into Mapping.tiles
    usage: Dict[str, int] = field(default_factory=dict)


@dataclass
class LayerMap:
    pop: str
    shape: Tuple[int, ...]
    neurons: int
    tile_shape: Tuple[int, ...]
    tiles: List[int]
    inputs: List[SynInput]
    binding: str = "none"
    binding_use: float = 0.0
    model: str = "CubaLIF"      # neuron model: CubaLIF | CubaLI | Delta | SigmaDelta | Sigma
    custom: str = ""            # why it needs a custom neuron program on Loihi 2 ("": standard)


@dataclass
class Mapping:
    """The placement: tiles (population blocks), cores, chips, per-layer summary."""
    layers: Dict[str, LayerMap]
    tiles: List[Tile]
    cores: List[Core]
    chips: int
    system: str
    system_chips: int
    resources: Loihi2Resources
    links: Dict[Tuple[int, int], int]                  # (src core, dst core) -> axon entries

    def layer_cores(self, pop: str) -> List[int]:
        return sorted({self.tiles[t].core for t in self.layers[pop].tiles})

    @property
    def inter_chip_links(self) -> int:
        return sum(1 for (a, b) in self.links if self.cores[a].chip != self.cores[b].chip)

    def to_dict(self) -> dict:
        res = self.resources
        return {
            "target": "loihi2",
            "system": self.system, "system_chips": self.system_chips,
            "chips": self.chips, "cores": len(self.cores),
            "limits": {k: res.v(v) for k, v in CORE_LIMITS.items()},
            "layers": [{
                "name": L.pop, "model": L.model, "shape": list(L.shape), "neurons": L.neurons,
                "cores": len(self.layer_cores(L.pop)), "tiles": len(L.tiles),
                "tile_shape": list(L.tile_shape),
                "chips": sorted({self.cores[c].chip for c in self.layer_cores(L.pop)}),
                "inputs": [{"synapse": s.synapse, "kind": s.kind, "source": s.source,
                            "weight_bits": s.bits, "message_bits": s.message_bits,
                            "max_delay": s.max_delay} for s in L.inputs],
                "max_per_tile": {k: max(self.tiles[t].usage[k] for t in L.tiles) for k in CORE_LIMITS
                                 if k != "groups"},
                "binding_limit": L.binding, "binding_use": round(L.binding_use, 4),
                "custom_neuron_program": L.custom or None,
            } for L in self.layers.values()],
            "cores_detail": [{
                "core": c.id, "chip": c.chip,
                "tiles": [{"layer": self.tiles[t].pop, "box": [list(b) for b in self.tiles[t].box],
                           "neurons": self.tiles[t].neurons} for t in c.tiles],
                **{k: int(v) for k, v in c.usage.items()},
                "fan_out_cores": sorted({b for (a, b) in self.links if a == c.id}),
                "fan_in_cores": sorted({a for (a, b) in self.links if b == c.id}),
            } for c in self.cores],
            "inter_chip_links": self.inter_chip_links,
            "links": len(self.links),
        }

    def table(self) -> str:
        from .printing import table
        rows = []
        for L in self.layers.values():
            mx = lambda k: max(self.tiles[t].usage[k] for t in L.tiles)
            cores = self.layer_cores(L.pop)
            chips = sorted({self.cores[c].chip for c in cores})
            rows.append([L.pop, L.model, "x".join(map(str, L.shape)), L.neurons, len(cores),
                         "x".join(map(str, L.tile_shape)), mx("neurons"), mx("synapse_words"),
                         mx("axons_in"), mx("axons_out"),
                         ",".join(map(str, chips)) if len(chips) <= 4 else f"{chips[0]}..{chips[-1]}",
                         f"{L.binding} ({100 * L.binding_use:.0f}%)"])
        head = ["layer", "model", "shape", "neurons", "cores", "tile", "neurons/core", "syn words/core",
                "axons in", "axons out", "chips", "binding limit (use)"]
        total = (f"total: {len(self.cores)} cores on {self.chips} chip(s) of {self.system} "
                 f"({self.system_chips} chips, {self.system_chips * int(self.resources.v('cores_per_chip'))} "
                 f"cores); {len(self.links)} core-to-core links, {self.inter_chip_links} between chips")
        custom = [f"  {L.pop}: {L.custom}" for L in self.layers.values() if L.custom]
        if custom:
            total += ("\nneeds a custom (microcoded) neuron program on Loihi 2 (the standard CUBA neuron "
                      "cannot run it):\n" + "\n".join(custom))
        return table(rows, head) + "\n" + total


# ----------------------------------------------------------------------------------------------
# helpers

def weight_bits(w) -> int:
    """Bits a core stores per synapse for integer weights ``w`` (Lava's num_weight_bits plus the
    sign bit of mixed-sign weights): common trailing zero bits are dropped (they go into the
    exponent), at least 1, at most 8."""
    a = np.asarray(w, dtype=np.int64).ravel()
    nz = a[a != 0]
    if nz.size == 0:
        return 1
    mag = np.abs(nz)
    tz = int(min(int((int(m) & -int(m))).bit_length() - 1 for m in np.unique(mag)))
    top = int(mag.max()) >> tz
    bits = max(1, top.bit_length()) + (1 if (nz.min() < 0 < nz.max()) else 0)
    return int(min(8, bits))


def _layer_inputs(net: Network, pop: str, res: Loihi2Resources = LOIHI2) -> List[SynInput]:
    """The synaptic inputs of population ``pop``: its connections in the lowered network (bias
    inputs are written into the neurons' bias, netx's input layer, and take no synapse)."""
    return [_syn_input(net, c, res) for c in net.into(pop)]


def _host_input(net: Network, c: Connection) -> SynInput:
    """A direct link (no synapse): netx's SDNN input layer, the host writing the data into a
    Delta's a_in (no synapse in Lava; counted as one identity input axon + synapse word per
    neuron). Any other link is refused: Loihi neurons take input only through synapses."""
    (src,) = c.sources
    if net.populations[c.dst].kind == "delta" and net.populations[src.pop].kind == "input" and not src.path:
        return SynInput(synapse=src.pop, kind="host", source=src.pop, source_is_input=True, bits=0, max_delay=0)
    last = src.path[-1] if src.path else src.pop
    raise SnncError(f"population {c.dst!r} receives {last!r} ({type(net.graph.nodes[last]).__name__}) "
                    "directly; Loihi neurons take input only through synapses")


def _message_bits(c: Connection, res: Loihi2Resources) -> int:
    mbits = int(getattr(c.fixed, "num_message_bits", 0) or 0)
    if mbits > res.v("message_bits"):
        raise SnncError(f"layer {c.dst!r} cannot be placed on Loihi 2: its synapse {c.name!r} reads "
                        f"{mbits}-bit graded messages, the limit is {res.v('message_bits'):g} bits "
                        "(Lava's graded ports). Would fit: messages of at most "
                        f"{res.v('message_bits'):g} bits (netx's SDNN default is 16).")
    return mbits


def _syn_input(net: Network, c: Connection, res: Loihi2Resources) -> SynInput:
    """What a core stores for connection ``c``: its kind, source, weight bits and delay."""
    if c.synapse is None:
        return _host_input(net, c)
    if c.fixed is None:
        raise SnncError(f"synapse {c.name!r} has no fixed-point view: compile (quantize) the model first")
    if c.post_flatten:
        raise SnncError(f"synapse {c.name!r} reaches population {c.dst!r} through a Flatten; the mapper "
                        "places a synapse's outputs on its population's neurons as they are")
    if len(c.sources) != 1:
        raise SnncError(f"synapse {c.name!r} reads {len(c.sources)} sources "
                        f"{[s.pop for s in c.sources]}; the mapper expects one")
    (src,) = c.sources
    # a Loihi synapse already takes one step (Lava's synapses send before they compute), so an
    # IR delay of d needs d - 1 extra steps of synaptic delay on the core
    delay = int(src.delay.max()) + int(c.post_delay.max())
    common = dict(synapse=c.name, source=src.pop, source_is_input=net.populations[src.pop].kind == "input",
                  bits=weight_bits(c.fixed.weight), max_delay=max(delay - 1, 0),
                  message_bits=_message_bits(c, res))
    node = c.synapse
    if isinstance(node, Dense):
        return SynInput(kind="dense", in_features=int(node.weight.shape[1]), **common)
    if isinstance(node, Conv2d):
        return SynInput(kind="conv", cin_per_group=int(node.weight.shape[1]), kernel=tuple(node.weight.shape[2:]),
                        stride=_pair(node.stride), padding=_pair(node.padding), dilation=_pair(node.dilation),
                        groups=int(node.groups), out_channels=int(node.weight.shape[0]), **common)
    ch = int(c.out_shape[0])
    return SynInput(kind="pool", cin_per_group=1, kernel=_pair(node.kernel), stride=_pair(node.stride),
                    padding=_pair(node.padding), groups=ch, out_channels=ch, **common)


def _syn_words(inp: SynInput, box, word_bits: int) -> int:
    if inp.kind == "host":
        return int(np.prod([b - a for a, b in box]))        # one identity synapse per neuron
    if inp.kind == "dense":
        n = box[0][1] - box[0][0]
        return inp.in_features * math.ceil(n * inp.bits / word_bits)
    (c0, c1) = box[0]
    og = inp.out_channels // inp.groups
    kh, kw = inp.kernel
    words = 0
    for g in range(c0 // og, (c1 - 1) // og + 1):
        n_ch = min(c1, (g + 1) * og) - max(c0, g * og)
        words += inp.cin_per_group * kh * kw * math.ceil(n_ch * inp.bits / word_bits)
    return words


def _model_state_bytes(res: Loihi2Resources, node) -> int:
    """Per-neuron state of the neuron model (without the dendritic accumulators)."""
    if isinstance(node, SigmaDelta):
        return int(res.v("sdn_state_bytes") + (res.v("sdn_error_bytes") if node.cumulative_error else 0))
    if isinstance(node, Delta):
        return int(res.v("delta_state_bytes") + (res.v("sdn_error_bytes") if node.cumulative_error else 0))
    if isinstance(node, Sigma):
        return int(res.v("sigma_state_bytes"))
    return int(res.v("cuba_state_bytes"))


def _state_per_neuron(res: Loihi2Resources, inputs: List[SynInput], node=None) -> int:
    d = max([i.max_delay for i in inputs] + [0])
    base = res.v("cuba_state_bytes") if node is None else _model_state_bytes(res, node)
    return int(base + res.v("accumulator_bytes") * (d + 1))


def _candidates(n: int) -> List[int]:
    return sorted({math.ceil(n / k) for k in range(1, n + 1)}, reverse=True)


def _fail(pop: str, what: str, need, limit, res, hint: str) -> SnncError:
    return SnncError(f"layer {pop!r} does not fit on a Loihi 2 core: {what} needs {need} "
                     f"{LIMIT_WORDS.get(what, what)}, the limit is {limit:g}. {hint}")


def _tile_layer(pop: Population, inputs: List[SynInput], res: Loihi2Resources,
                cap: Optional[int]) -> Tuple[int, ...]:
    """The tile shape for population ``pop`` (neurons per tile capped by ``cap`` if given)."""
    L_n = int(res.v("neurons_per_core")) if cap is None else min(cap, int(res.v("neurons_per_core")))
    L_s = int(res.v("state_bytes_per_core"))
    spn = _state_per_neuron(res, inputs, pop.node)
    max_d = max([i.max_delay for i in inputs] + [0])
    if max_d > res.v("max_delay"):
        raise SnncError(f"layer {pop.name!r}: a delay of {max_d + 1} steps needs a synaptic delay of {max_d} "
                        f"steps (the synapse itself takes one), more than Loihi 2's maximum of "
                        f"{res.v('max_delay'):g}; split the delay with an intermediate relay "
                        "population or shorten it")
    n_by_state = L_s // spn
    if n_by_state < 1:
        raise _fail(pop.name, "state_bytes", spn, L_s, res, "shorten the synaptic delays into this layer")
    n_cap = min(L_n, n_by_state)
    if any(i.kind == "host" for i in inputs):     # one host axon and synapse word per neuron
        n_cap = min(n_cap, int(res.v("axons_in_per_core")), int(res.v("synapse_words_per_core")))
    shape = tuple(int(x) for x in pop.shape)
    if len(shape) == 1:
        return _tile_1d(pop.name, shape[0], inputs, n_cap, res)
    return _tile_3d(pop.name, shape, inputs, n_cap, res)


def _tile_1d(pop: str, size: int, inputs: List[SynInput], n_cap: int, res: Loihi2Resources) -> Tuple[int]:
    """Equal runs of neurons: the fewest whose synapse lists fit a core."""
    L_w, L_a, wb = int(res.v("synapse_words_per_core")), int(res.v("axons_in_per_core")), int(res.v("synapse_word_bits"))
    fan_in = sum(i.in_features for i in inputs if i.kind == "dense")
    if fan_in > L_a:
        raise _fail(pop, "axons_in", fan_in, L_a, res,
                    f"Each neuron's {fan_in} input synapses must all be on its own core. Would fit: "
                    f"a fan-in of at most {L_a} inputs (e.g. a smaller preceding layer, or pooling "
                    "before the dense layer).")
    words = lambda n: sum(_syn_words(i, ((0, n),), wb) for i in inputs)
    if words(1) > L_w:
        raise _fail(pop, "synapse_words", words(1), L_w, res,
                    "One neuron's synapses alone exceed a core's synapse memory; use fewer inputs.")
    lo, hi = 1, min(n_cap, size)
    while lo < hi:                                   # largest n with words(n) <= L_w
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if words(mid) <= L_w else (lo, mid - 1)
    k = math.ceil(size / lo)
    return (math.ceil(size / k),)


def _tile_3d(pop: str, shape, inputs: List[SynInput], n_cap: int, res: Loihi2Resources) -> Tuple[int, int, int]:
    """(channels x rows x columns) blocks: the fewest cores, then the most channels and rows together."""
    L_w, wb = int(res.v("synapse_words_per_core")), int(res.v("synapse_word_bits"))
    C, H, W = shape
    best = None
    for tc in _candidates(C):
        if sum(_syn_words(i, ((0, tc), (0, 1), (0, 1)), wb) for i in inputs) > L_w:
            continue
        for th in _candidates(H):
            tw = min(W, n_cap // (tc * th))
            if tw < 1:
                continue
            key = (math.ceil(C / tc) * math.ceil(H / th) * math.ceil(W / tw), -tc, -th)
            if best is None or key < best[0]:
                best = (key, tc, th, tw)
    if best is None:
        worst = max(inputs, key=lambda i: i.cin_per_group * i.kernel[0] * i.kernel[1])
        one = sum(_syn_words(i, ((0, 1), (0, 1), (0, 1)), wb) for i in inputs)
        per_ch = worst.kernel[0] * worst.kernel[1]
        raise _fail(pop, "synapse_words", one, L_w, res,
                    f"One output channel's kernel ({worst.cin_per_group} input channels x "
                    f"{worst.kernel[0]}x{worst.kernel[1]}) does not fit a core. Would fit: at most "
                    f"{L_w // max(1, per_ch)} input channels per group with this kernel "
                    "(use groups, or fewer input channels).")
    _, tc, th, tw = best
    return tuple(math.ceil(n / math.ceil(n / t)) for n, t in zip(shape, (tc, th, tw)))


def _boxes(shape, tile) -> List[Tuple[Tuple[int, int], ...]]:
    ranges = [[(a, min(a + t, n)) for a in range(0, n, t)] for n, t in zip(shape, tile)]
    out = [()]
    for r in ranges:
        out = [o + (x,) for o in out for x in r]
    return out


def _receptive(inp: SynInput, box) -> Tuple[Tuple[int, int], ...]:
    """Input-space box a destination conv tile reads (channels, rows, cols), unclipped ends."""
    (c0, c1), (h0, h1), (w0, w1) = box
    og = inp.out_channels // inp.groups
    g0, g1 = c0 // og, (c1 - 1) // og
    ci = (g0 * inp.cin_per_group, (g1 + 1) * inp.cin_per_group)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = inp.kernel, inp.stride, inp.padding, inp.dilation
    rows = (h0 * sh - ph, (h1 - 1) * sh - ph + dh * (kh - 1) + 1)
    cols = (w0 * sw - pw, (w1 - 1) * sw - pw + dw * (kw - 1) + 1)
    return ci, rows, cols


def _overlap(a, b) -> bool:
    return all(x0 < y1 and y0 < x1 for (x0, x1), (y0, y1) in zip(a, b))


# ----------------------------------------------------------------------------------------------
# the pass

def map_graph(graph: Graph, res: Loihi2Resources = LOIHI2, system: str = DEFAULT_SYSTEM,
              chips: Optional[int] = None) -> Mapping:
    """Place ``graph`` (quantized) on Loihi 2 cores and chips; SnncError if it does not fit."""
    if system not in SYSTEMS:
        raise SnncError(f"unknown system {system!r}; choose one of {', '.join(SYSTEMS)}")
    sys_chips = int(chips) if chips else SYSTEMS[system][0]
    graph = ensure_compiled(graph)
    net = lower(graph)
    pops = [p for p in net.populations.values() if p.kind != "input"]       # graph order
    if not pops:
        raise SnncError("the graph has no neuron population (CubaLIF, Delta, SigmaDelta, Sigma) "
                        "to place on Loihi")
    inputs = {p.name: _layer_inputs(net, p.name, res) for p in pops}
    layers, tiles, links = _tile_network(pops, inputs, res)
    custom = custom_neuron_programs(net)
    for L in layers.values():
        L.custom = custom.get(L.pop, "")
    cores = _pack(tiles, res)
    _bind(layers, tiles, res)
    m = Mapping(layers, tiles, cores, math.ceil(len(cores) / int(res.v("cores_per_chip"))), system, sys_chips,
                res, _core_links(tiles, links))
    _check_chips(m)
    return m


def _layers(pops: List[Population], inputs, res: Loihi2Resources, caps) -> Tuple[Dict[str, LayerMap], List[Tile]]:
    """Every population cut into tiles of the shape ``_tile_layer`` chooses."""
    tiles: List[Tile] = []
    layers: Dict[str, LayerMap] = {}
    for p in pops:
        shape = tuple(int(x) for x in p.shape)
        tshape = _tile_layer(p, inputs[p.name], res, caps[p.name])
        idx = []
        for box in _boxes(shape, tshape):
            tiles.append(Tile(p.name, len(idx), box))
            idx.append(len(tiles) - 1)
        layers[p.name] = LayerMap(p.name, shape, int(np.prod(shape)), tshape, idx, inputs[p.name],
                                  model=type(p.node).__name__)
    return layers, tiles


def _tile_network(pops: List[Population], inputs, res: Loihi2Resources):
    """Tiles of every population, made smaller until no tile exceeds the output-axon limit:
    (layers, tiles, tile-to-tile axon entries); every tile within the input-axon limit."""
    caps: Dict[str, Optional[int]] = {p.name: None for p in pops}
    nodes = {p.name: p.node for p in pops}
    L_out = int(res.v("axons_out_per_core"))
    for _attempt in range(16):
        layers, tiles = _layers(pops, inputs, res, caps)
        links = _usage(layers, tiles, nodes, res)
        over = sorted({t.pop for t in tiles if t.usage["axons_out"] > L_out})
        if not over:
            _check_axons_in(tiles, res)
            return layers, tiles, links
        for p in over:
            cur = max(tiles[t].neurons for t in layers[p].tiles)
            if cur <= 1:
                t = max(layers[p].tiles, key=lambda t: tiles[t].usage["axons_out"])
                raise _fail(p, "axons_out", tiles[t].usage["axons_out"], L_out, res,
                            "Even one neuron per core sends to too many cores; reduce the fan-out.")
            caps[p] = max(1, cur // 2)
    raise SnncError("mapping did not converge on the output-axon limit after 16 refinements")


def _usage(layers: Dict[str, LayerMap], tiles: List[Tile], nodes, res: Loihi2Resources) -> Dict[Tuple[int, int], int]:
    """Per-tile usage (neurons, synapse words, state, axons in and out); returns the axon
    entries per (source tile, destination tile)."""
    wb = int(res.v("synapse_word_bits"))
    links: Dict[Tuple[int, int], int] = {}
    for p, L in layers.items():
        spn = _state_per_neuron(res, L.inputs, nodes[p])
        for t in L.tiles:
            tile = tiles[t]
            tile.usage = {"neurons": tile.neurons, "state_bytes": tile.neurons * spn,
                          "synapse_words": sum(_syn_words(i, tile.box, wb) for i in L.inputs),
                          "axons_in": 0, "axons_out": 0, "groups": 1}
            for i in L.inputs:
                _axons_in(i, t, layers, tiles, links)
    for (s, t), n in links.items():
        tiles[s].usage["axons_out"] += n
    return links


def _axons_in(i: SynInput, t: int, layers: Dict[str, LayerMap], tiles: List[Tile], links) -> None:
    """Input axons tile ``t`` needs for input ``i``, and the links from its source tiles."""
    tile = tiles[t]
    if i.kind == "host":
        tile.usage["axons_in"] += tile.neurons
    elif i.kind == "dense":
        tile.usage["axons_in"] += i.in_features
        if not i.source_is_input:
            for s in layers[i.source].tiles:
                links[(s, t)] = links.get((s, t), 0) + tiles[s].neurons
    elif i.source_is_input:
        tile.usage["axons_in"] += 1
    else:
        rf = _receptive(i, tile.box)
        for s in layers[i.source].tiles:
            if _overlap(tiles[s].box, rf):
                tile.usage["axons_in"] += 1
                links[(s, t)] = links.get((s, t), 0) + 1


def _check_axons_in(tiles: List[Tile], res: Loihi2Resources) -> None:
    L_in = int(res.v("axons_in_per_core"))
    for t in tiles:
        if t.usage["axons_in"] > L_in:
            raise _fail(t.pop, "axons_in", t.usage["axons_in"], L_in, res,
                        "Too many source cores feed one tile; use larger tiles in the preceding layer.")


def _pack(tiles: List[Tile], res: Loihi2Resources) -> List[Core]:
    """First fit in graph order, among the cores of the chip being filled; sets ``Tile.core``."""
    limits = {k: int(res.v(v)) for k, v in CORE_LIMITS.items()}
    cpc = int(res.v("cores_per_chip"))
    core_use: List[Dict[str, int]] = []
    core_tiles: List[List[int]] = []
    for ti, tile in enumerate(tiles):
        first = (max(len(core_use) - 1, 0) // cpc) * cpc
        ci = next((c for c in range(first, len(core_use))
                   if all(core_use[c][k] + tile.usage[k] <= limits[k] for k in limits)), None)
        if ci is None:                               # a new core
            core_use.append(dict(tile.usage))
            core_tiles.append([ti])
            tile.core = len(core_use) - 1
            continue
        for k in limits:
            core_use[ci][k] += tile.usage[k]
        core_tiles[ci].append(ti)
        tile.core = ci
    return [Core(i, i // cpc, core_tiles[i], core_use[i]) for i in range(len(core_use))]


def _core_links(tiles: List[Tile], links) -> Dict[Tuple[int, int], int]:
    out: Dict[Tuple[int, int], int] = {}
    for (s, t), n in links.items():
        key = (tiles[s].core, tiles[t].core)
        out[key] = out.get(key, 0) + n
    return out


def _bind(layers: Dict[str, LayerMap], tiles: List[Tile], res: Loihi2Resources) -> None:
    """The binding limit of each layer: the resource its fullest tile uses most of."""
    limits = {k: int(res.v(v)) for k, v in CORE_LIMITS.items()}
    for L in layers.values():
        best = ("none", 0.0)
        for t in L.tiles:
            for k in ("neurons", "synapse_words", "axons_in", "axons_out", "state_bytes"):
                u = tiles[t].usage[k] / limits[k]
                if u > best[1] + 1e-12:
                    best = (k, u)
        L.binding, L.binding_use = best


def _check_chips(m: Mapping) -> None:
    if m.chips <= m.system_chips:
        return
    cpc = int(m.resources.v("cores_per_chip"))
    big = sorted(m.layers.values(), key=lambda L: -len(m.layer_cores(L.pop)))[:3]
    names = ", ".join(f"{L.pop!r} {len(m.layer_cores(L.pop))} cores ({L.binding})" for L in big)
    fits = [n for n, (c, _) in SYSTEMS.items() if c >= m.chips]
    raise SnncError(f"the network needs {len(m.cores)} cores on {m.chips} chips; {m.system} has "
                    f"{m.system_chips} chip(s) ({m.system_chips * cpc} cores). Largest layers: {names}. "
                    f"Would fit: " + (f"--system {fits[0]}" if fits else "no listed system") +
                    f" or --chips {m.chips}")
