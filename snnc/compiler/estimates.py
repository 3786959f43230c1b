"""Activity, latency and energy estimates from a map and the spike counts of a simulation run.

Per core and time step (averaged over the run):
- spikes out: spikes of the core's neurons; for sigma-delta populations (Delta, SigmaDelta) the
  graded messages they send, i.e. the steps with a non-zero delta (the reference simulator
  counts exactly those); a Sigma output sends to the host only and counts none;
- synaptic ops: every input spike or graded message is processed against every synapse the
  core stores for it (dense: the tile's neurons; conv: the tile's neurons whose receptive field
  holds the spike; a Delta's host input: one per non-zero input value);
- neuron updates: every neuron every step (Loihi updates silent neurons too, more cheaply);
- spike messages: one per spike and destination core, with mesh hops on an assumed 16 x 8 grid
  of cores per chip, plus a chip-to-chip cost when the destination is on another chip.

Time per step: the slowest core's serial work (synops and neuron updates) plus the barrier
synchronization; energy: the sum of every operation times its cost. The per-operation figures
are Loihi 1's (Davies et al. 2018): Intel has not published Loihi 2's (see resources.py, where
each is named). Graded messages and the synaptic ops they cause cost ``graded_cost_factor``
times a binary spike's (1.0: an assumption). These are estimates for comparing mappings, not
measurements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from .conv import conv2d
from .mapping import Mapping

MESH_W = 16


@dataclass
class Estimate:
    steps: int
    per_core: List[dict] = field(default_factory=list)
    totals: Dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"steps_per_inference": self.steps, "totals": self.totals, "per_core": self.per_core}

    def summary(self) -> str:
        t = self.totals
        spk = (f"{t['spikes_per_step']:.4g} spikes" if not t.get("graded_messages_per_step") else
               f"{t['spikes_per_step']:.4g} spikes/graded messages ({t['graded_messages_per_step']:.4g} graded)")
        return (f"per time step: {t['synops_per_step']:.4g} synaptic ops, {spk}, "
                f"{t['messages_per_step']:.4g} spike messages ({t['inter_chip_messages_per_step']:.4g} between chips)\n"
                f"time step ~{t['step_time_us']:.3g} us (slowest core {t['slowest_core']}), "
                f"energy ~{t['energy_per_step_uj']:.3g} uJ per step\n"
                f"per inference of {self.steps} steps: latency ~{t['latency_per_inference_us']:.4g} us, "
                f"dynamic energy ~{t['energy_per_inference_uj']:.4g} uJ "
                f"(Loihi 1 per-operation figures; Loihi 2's are unpublished)")


def _window_sums(counts: np.ndarray, inp) -> np.ndarray:
    """Per output neuron: input spikes (summed over its receptive field channels and taps)."""
    w = np.ones((inp.out_channels, inp.cin_per_group) + tuple(inp.kernel), dtype=np.float64)
    return conv2d(counts[None].astype(np.float64), w, inp.stride, inp.padding, inp.dilation,
                  inp.groups)[0]


def _coord(core_id: int, cpc: int):
    local = core_id % cpc
    return local % MESH_W, local // MESH_W


def estimate(m: Mapping, counts: Dict[str, np.ndarray], steps: int,
             input_counts: Optional[Dict[str, np.ndarray]] = None) -> Estimate:
    """``counts``: population -> spike count per neuron over ``steps`` steps (one sample, shape of
    the population); ``input_counts``: Input node -> the same for the input spikes."""
    T = max(1, int(steps))
    allc = dict(input_counts or {})
    allc.update(counts)
    graded_pop = {L.pop for L in m.layers.values() if L.model not in ("CubaLIF", "CubaLI")}
    syn, gsyn, spk = _tile_activity(m, allc, T)
    core_spk = np.zeros(len(m.cores))
    core_gfrac = np.zeros(len(m.cores))        # share of the core's messages that are graded
    for c in m.cores:
        core_spk[c.id] = sum(spk[t] for t in c.tiles)
        g = sum(spk[t] for t in c.tiles if m.tiles[t].pop in graded_pop)
        core_gfrac[c.id] = g / core_spk[c.id] if core_spk[c.id] > 0 else 0.0
    msgs, msg_energy, inter = _messages(m, core_spk, core_gfrac)
    per_core = _core_rows(m, syn, gsyn, core_spk, msgs, msg_energy)
    return Estimate(T, per_core, _totals(m, per_core, syn, spk, graded_pop, msgs, inter, T))


def _tile_activity(m: Mapping, allc: Dict[str, np.ndarray], T: int):
    """Per tile and step: synaptic ops, of which graded, and spikes (or graded messages) out."""
    per_tile_syn = np.zeros(len(m.tiles))
    per_tile_gsyn = np.zeros(len(m.tiles))          # of which graded (message_bits > 0)
    per_tile_spk = np.zeros(len(m.tiles))
    for L in m.layers.values():
        c = allc.get(L.pop)
        for t in L.tiles:
            box = tuple(slice(a, b) for a, b in m.tiles[t].box)
            per_tile_spk[t] = 0.0 if c is None else float(np.asarray(c)[box].sum()) / T
        for i in L.inputs:
            src = allc.get(i.source)
            if src is None:
                continue
            add = _synops(m, L, i, np.asarray(src, dtype=np.float64), T)
            per_tile_syn += add
            if i.message_bits > 0 or i.kind == "host":
                per_tile_gsyn += add
    return per_tile_syn, per_tile_gsyn, per_tile_spk


def _synops(m: Mapping, L, i, src: np.ndarray, T: int) -> np.ndarray:
    """Synaptic ops per step that input ``i`` of layer ``L`` causes in each tile."""
    add = np.zeros(len(m.tiles))
    if i.kind == "host":
        for t in L.tiles:
            box = tuple(slice(a, b) for a, b in m.tiles[t].box)
            add[t] = float(src[box].sum()) / T
    elif i.kind == "dense":
        total = float(src.sum()) / T
        for t in L.tiles:
            add[t] = total * m.tiles[t].neurons
    else:
        win = _window_sums(src, i) / T
        for t in L.tiles:
            box = tuple(slice(a, b) for a, b in m.tiles[t].box)
            add[t] = float(win[box].sum())
    return add


def _messages(m: Mapping, core_spk: np.ndarray, core_gfrac: np.ndarray):
    """Spike messages per source core (once per destination core), their energy, and how many
    cross chips."""
    res = m.resources
    cpc = int(res.v("cores_per_chip"))
    e_loc, e_hop, e_chip = res.v("energy_spike_local_pj"), res.v("energy_hop_pj"), res.v("energy_chip_hop_pj")
    g_f = res.v("graded_cost_factor")
    msg_energy = np.zeros(len(m.cores))
    msgs = np.zeros(len(m.cores))
    inter = 0.0
    for (a, b) in m.links:
        n = core_spk[a]
        scale = 1.0 + (g_f - 1.0) * core_gfrac[a]
        if a == b:
            msgs[a] += n
            msg_energy[a] += n * e_loc * scale
            continue
        (xa, ya), (xb, yb) = _coord(a, cpc), _coord(b, cpc)
        hops = abs(xa - xb) + abs(ya - yb)
        e = e_loc + hops * e_hop
        if m.cores[a].chip != m.cores[b].chip:
            e += e_chip
            inter += n
        msgs[a] += n
        msg_energy[a] += n * e * scale
    return msgs, msg_energy, inter


def _core_rows(m: Mapping, per_tile_syn, per_tile_gsyn, core_spk, msgs, msg_energy) -> List[dict]:
    res = m.resources
    e_syn, e_act, e_idle = res.v("energy_synop_pj"), res.v("energy_neuron_active_pj"), res.v("energy_neuron_idle_pj")
    g_f = res.v("graded_cost_factor")
    t_syn, t_nu = res.v("time_synop_ns"), res.v("time_neuron_ns")
    per_core = []
    for c in m.cores:
        syn = sum(per_tile_syn[t] for t in c.tiles)
        gsyn = sum(per_tile_gsyn[t] for t in c.tiles)
        neurons = c.usage["neurons"]
        spk = core_spk[c.id]
        energy = (syn - gsyn + gsyn * g_f) * e_syn + spk * e_act + max(neurons - spk, 0) * e_idle + msg_energy[c.id]
        per_core.append({"core": c.id, "chip": c.chip,
                         "layers": sorted({m.tiles[t].pop for t in c.tiles}),
                         "synops_per_step": round(syn, 3), "graded_synops_per_step": round(gsyn, 3),
                         "spikes_per_step": round(spk, 3),
                         "neuron_updates_per_step": neurons, "messages_per_step": round(float(msgs[c.id]), 3),
                         "busy_ns": round(syn * t_syn + neurons * t_nu, 1),
                         "energy_pj_per_step": round(energy, 1)})
    return per_core


def _totals(m: Mapping, per_core, per_tile_syn, per_tile_spk, graded_pop, msgs, inter, T: int) -> Dict[str, float]:
    res = m.resources
    slow = max(per_core, key=lambda r: r["busy_ns"])
    step_ns = (slow["busy_ns"] + res.v("time_barrier_ns")) / res.v("loihi2_speedup")
    e_step_pj = sum(r["energy_pj_per_step"] for r in per_core)
    return {
        "synops_per_step": float(per_tile_syn.sum()), "spikes_per_step": float(per_tile_spk.sum()),
        "graded_messages_per_step": float(sum(per_tile_spk[t] for t in range(len(m.tiles))
                                              if m.tiles[t].pop in graded_pop)),
        "messages_per_step": float(msgs.sum()), "inter_chip_messages_per_step": float(inter),
        "neuron_updates_per_step": int(sum(c.usage["neurons"] for c in m.cores)),
        "step_time_us": step_ns / 1000, "slowest_core": slow["core"],
        "energy_per_step_uj": e_step_pj / 1e6,
        "latency_per_inference_us": step_ns * T / 1000,
        "energy_per_inference_uj": e_step_pj * T / 1e6,
        "inferences_per_second": 1e9 / (step_ns * T),
        "figures": "loihi1 (Davies et al. 2018, Table 2); Loihi 2 per-op figures unpublished",
    }


def counts_from_run(result, shapes: Dict[str, tuple], sample: int = 0) -> Dict[str, np.ndarray]:
    """Spike counts per population of one sample of a RunResult (its counts may be batched)."""
    out = {}
    for k, v in result.counts.items():
        v = np.asarray(v)
        out[k] = v if tuple(v.shape) == tuple(shapes.get(k, ())) else v[sample]
    return out
