"""The Loihi 2 resource model: every number snnc's mapping and estimates use, with its source.

One place, one table (rendered in docs/loihi2-resources.md by ``resource_table()``). Each entry
says where the number comes from:

- ``published``: Intel's own publications (Loihi 2 technology brief 2021, press releases);
- ``lava-source``: the open Lava / lava-dl code (what the bit-accurate models and netx enforce);
- ``observed``: what Intel's closed Loihi 2 compiler printed in a public lava-dl notebook;
- ``loihi1``: a published Loihi 1 figure used because Intel has not published the Loihi 2 one;
- ``assumption``: Intel has published no number; snnc uses a conservative one and says so.

Nothing here is tuned to make a particular network fit. Change a value by building another
``Loihi2Resources`` (``dataclasses.replace``); the mapping pass takes it as an argument.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Dict, List, Tuple

# sources, cited by key in every entry
SOURCES: Dict[str, str] = {
    "brief": "Intel Labs, 'Taking Neuromorphic Computing to the Next Level with Loihi 2', "
             "technology brief, 2021 (128 neuro-cores, up to 1M neurons and 120M synapses per chip, "
             "192 KB memory per core, 0-4096 B state per neuron)",
    "lava-constants": "lava-nc 0.10 lava/magma/compiler/subcompilers/constants.py "
                      "(NUM_VIRTUAL_CORES_L2 = 128)",
    "lava-lif": "lava-nc 0.10 lava/proc/lif/models.py (24-bit u/v, 12-bit decays, vth << 6, "
                "13-bit bias mantissa with 3-bit exponent)",
    "lava-dense": "lava-nc 0.10 lava/proc/dense/models.py, lava/utils/weightutils.py "
                  "(8-bit weight mantissa, num_weight_bits 1..8, weight_exp)",
    "netx-delay": "lava-dl 0.6 lava/lib/dl/netx/hdf5.py (synaptic delays clamped to 62 steps); "
                  "Davies et al., IEEE Micro 38(1) 2018 (Loihi 1: delay field up to 62 when "
                  "fewer compartments are used)",
    "pilotnet-nb": "lava-dl tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb: the closed "
                   "Loihi 2 compiler's log ('SynMem' register capacity 12000 per core) and its per-core "
                   "table for PilotNet LIF (74 cores; conv cores hold <= 3168 neurons; conv synapse "
                   "memory = Cin*kh*kw * a small integer per core)",
    "davies2018": "Davies et al., 'Loihi: a neuromorphic manycore processor with on-chip learning', "
                  "IEEE Micro 38(1), 2018, Table 1 and Table 2 (Loihi 1, pre-silicon, 0.75 V)",
    "kapoho": "Intel, Kapoho Point board announcement, 2022 (8 Loihi 2 chips)",
    "hala": "Intel press release 'Hala Point', April 2024 (1,152 Loihi 2 processors)",
    "lava-sdn": "lava-nc 0.10 lava/proc/sdn/process.py and models.py (PySigmaDeltaModelFixed, "
                "PyDeltaModelFixed, PySigmaModelFixed: sigma, act, residue, error int32 at precision "
                "24, bias precision 16, a_in/s_out precision 24; error is used only with cum_error; "
                "the Delta model never uses its sigma Var)",
    "netx-sdnn": "lava-dl 0.6 lava/lib/dl/netx/hdf5.py get_neuron_params: an SDNN input layer is a "
                 "Delta fed straight into its a_in, 'sigma_output' a Sigma, every other layer a "
                 "SigmaDelta; num_message_bits 16 unless neuron/messageBits; spike_exp 6, state_exp 6",
    "pilotnet-sdnn-nb": "lava-dl tutorials/lava/lib/dl/netx/pilotnet_sdnn/benchmark.ipynb (commit "
                        "1878d6d): the closed Loihi 2 compiler's per-core table for the tutorial's "
                        "PilotNet SDNN (3x66x200 input encoded on the embedded CPU, skip_layers=1, so "
                        "no Delta layer on the chip): 61 cores; conv cores hold <= 3072 sigma-delta "
                        "neurons; conv synapse memory 81, 864, 1620, 2592, 2880 = Cin*kh*kw * 3, 4, 5, "
                        "6, 5 (the same structure as PilotNet LIF's); 11.18 fps, input-bound",
    "pilotnet-power": "lava-dl pilotnet_snn/benchmark.ipynb power/runtime results (PilotNet LIF on "
                      "Loihi 2: 74 cores, 408.9 inferences/s of 16 steps, 0.679 W total, 0.447 W "
                      "dynamic, 1.09 mJ dynamic per inference; another notebook revision shows 342 fps)",
}


@dataclass(frozen=True)
class Figure:
    """One number of the model: value, unit, kind (published/lava-source/observed/loihi1/assumption),
    source keys, and a note explaining how it is used."""
    value: float
    unit: str
    kind: str
    sources: Tuple[str, ...]
    note: str = ""


def _f(value, unit, kind, sources, note=""):
    return field(default=Figure(value, unit, kind, tuple(sources), note))


@dataclass(frozen=True)
class Loihi2Resources:
    """Limits per core and chip, number formats, and per-operation costs of Loihi 2."""
    # --- chip and system -------------------------------------------------------------------
    cores_per_chip: Figure = _f(128, "neuro-cores", "published", ["brief", "lava-constants"],
                                "some chip revisions expose 120; snnc plans with 128")
    neurons_per_chip: Figure = _f(1_048_576, "neurons", "published", ["brief"],
                                  "'up to 1M': only for the smallest neuron models")
    synapses_per_chip: Figure = _f(120_000_000, "synapses", "published", ["brief"],
                                   "'up to 120M': only for the most compact (low-bit) synapses")
    memory_per_core: Figure = _f(192 * 1024, "bytes", "published", ["brief"],
                                 "shared flexibly between synapses, neuron state and routing")
    # --- per-core limits used by the mapping pass ------------------------------------------
    neurons_per_core: Figure = _f(4096, "neurons", "assumption", ["brief", "pilotnet-nb"],
                                  "1M/128 = 8192 is the published ceiling for the simplest neurons; "
                                  "Intel's compiler put at most 3168 CUBA-LIF neurons on a PilotNet "
                                  "core. snnc allows 4096 CUBA-LIF neurons per core")
    synapse_words_per_core: Figure = _f(12000, "64-bit words", "observed", ["pilotnet-nb"],
                                        "the closed compiler's 'SynMem' capacity is 12000 units; that a "
                                        "unit is a 64-bit word is snnc's assumption (it makes the "
                                        "capacity 96 KB, half of the 192 KB core memory)")
    synapse_word_bits: Figure = _f(64, "bits", "assumption", ["pilotnet-nb", "davies2018"],
                                   "Loihi 1 synapse memory is 64-bit words; PilotNet's conv rows "
                                   "are consistent with Cin*kh*kw*ceil(Cout*bits/64)")
    axons_in_per_core: Figure = _f(4096, "input axons", "loihi1", ["davies2018"],
                                   "Loihi 1: 4096 input axon lists per core; Loihi 2 not published. "
                                   "A neuron's synapses all live on its core, so a dense neuron's "
                                   "fan-in is capped by this")
    axons_out_per_core: Figure = _f(4096, "output axon entries", "loihi1", ["davies2018"],
                                    "Loihi 1: 4096 output axons per core; Loihi 2 not published")
    neuron_groups_per_core: Figure = _f(8, "populations", "assumption", ["pilotnet-nb"],
                                        "how many populations snnc packs onto one core (the closed "
                                        "compiler's table shows 1 'NeuronGr' per core)")
    state_bytes_per_core: Figure = _f(48 * 1024, "bytes", "assumption", ["brief"],
                                      "neuron state budget of a core (the rest of the 192 KB holds "
                                      "synapses and routing)")
    cuba_state_bytes: Figure = _f(8, "bytes per neuron", "assumption", ["brief", "lava-lif"],
                                  "u and v are 24-bit (6 bytes) plus 2 bytes of per-neuron config; "
                                  "the brief allows 0-4096 bytes per neuron depending on the model")
    sdn_state_bytes: Figure = _f(11, "bytes per neuron", "assumption", ["lava-sdn", "pilotnet-sdnn-nb"],
                                 "SigmaDelta: sigma, act and residue are 24-bit (9 bytes) and the bias "
                                 "16-bit (2 bytes) in Lava's fixed model; that a core stores exactly "
                                 "these is snnc's assumption. With one accumulator (14 bytes) 3072 "
                                 "neurons, Intel's fullest SDNN core, fit the state budget")
    sdn_error_bytes: Figure = _f(3, "bytes per neuron", "lava-source", ["lava-sdn"],
                                 "the 24-bit error of Delta/SigmaDelta, counted only with "
                                 "cumulative_error (Lava's models use it only then; netx never sets it)")
    delta_state_bytes: Figure = _f(6, "bytes per neuron", "assumption", ["lava-sdn"],
                                   "Delta encoder: act and residue, 24-bit each (Lava's Delta model "
                                   "does not use its sigma Var)")
    sigma_state_bytes: Figure = _f(3, "bytes per neuron", "assumption", ["lava-sdn"],
                                   "Sigma output: sigma, 24-bit")
    accumulator_bytes: Figure = _f(3, "bytes per neuron per delay slot", "assumption",
                                   ["davies2018", "lava-dense"],
                                   "one 24-bit dendritic accumulator per neuron per step of delay "
                                   "(max delay + 1 slots); longer delays cost neurons, as on Loihi 1")
    # --- number formats (enforced by the quantization pass; checked again here) -------------
    weight_bits: Figure = _f(8, "bits (mantissa, incl. sign)", "lava-source", ["lava-dense"],
                             "plus a shared weight exponent for Dense; num_weight_bits 1..8")
    state_bits: Figure = _f(24, "bits (u, v)", "lava-source", ["lava-lif"])
    decay_bits: Figure = _f(12, "bits (du, dv)", "lava-source", ["lava-lif"])
    threshold_bits: Figure = _f(17, "bits (vth mantissa, << 6)", "lava-source", ["lava-lif"])
    max_delay: Figure = _f(62, "time steps", "lava-source", ["netx-delay"])
    message_bits: Figure = _f(24, "bits per graded message", "lava-source", ["lava-sdn", "netx-sdnn"],
                              "Lava's graded ports (sdn a_in/s_out, Dense/Conv num_message_bits) "
                              "carry 24-bit values; netx's SDNN uses 16. The message width costs "
                              "no synapse memory (weights are stored, not messages: Intel's SDNN "
                              "conv rows have the LIF rows' structure) and no extra axons (one "
                              "axon per source either way); it widens each message's payload")
    # --- per-operation costs (estimates only) -----------------------------------------------
    energy_synop_pj: Figure = _f(23.6, "pJ per synaptic op", "loihi1", ["davies2018"],
                                 "Loihi 2 per-op energies are not published")
    energy_neuron_active_pj: Figure = _f(81.0, "pJ per neuron update (spiking)", "loihi1",
                                         ["davies2018"])
    energy_neuron_idle_pj: Figure = _f(52.0, "pJ per neuron update (silent)", "loihi1", ["davies2018"])
    energy_spike_local_pj: Figure = _f(1.7, "pJ per spike message within a tile", "loihi1",
                                       ["davies2018"])
    energy_hop_pj: Figure = _f(3.5, "pJ per mesh hop", "loihi1", ["davies2018"],
                               "mean of 3.0 (east-west) and 4.0 (north-south)")
    graded_cost_factor: Figure = _f(1.0, "x a binary spike's cost", "assumption", [],
                                    "a graded message, and each synaptic op it causes (a multiply "
                                    "by the payload instead of an add), is costed as a binary "
                                    "spike's; Intel has published no per-payload cost")
    energy_chip_hop_pj: Figure = _f(100.0, "pJ per inter-chip spike message", "assumption", [],
                                    "no published figure; a chip-to-chip link is taken as ~30 mesh hops")
    time_synop_ns: Figure = _f(3.5, "ns per synaptic op", "loihi1", ["davies2018"])
    time_neuron_ns: Figure = _f(8.4, "ns per neuron update", "loihi1", ["davies2018"],
                                "Table 2 active-neuron update time, as recalled from the paper; not "
                                "cross-checked in the project's research notes")
    time_barrier_ns: Figure = _f(465.0, "ns per time-step barrier", "loihi1", ["davies2018"],
                                 "113-465 ns for 1-32 tiles; snnc uses the 32-tile figure")
    time_hop_ns: Figure = _f(6.5, "ns per mesh hop", "loihi1", ["davies2018"])
    loihi2_speedup: Figure = _f(1.0, "x", "assumption", ["brief"],
                                "Intel claims 'up to 10x' faster than Loihi 1; snnc's estimates "
                                "apply no speed-up (conservative)")

    def v(self, name: str) -> float:
        """The value of figure ``name``."""
        return getattr(self, name).value

    def with_values(self, **values) -> "Loihi2Resources":
        """A copy with some figures' values changed (kind becomes 'override')."""
        return replace(self, **{k: replace(getattr(self, k), value=v, kind="override")
                                for k, v in values.items()})

    def figures(self) -> List[Tuple[str, Figure]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


LOIHI2 = Loihi2Resources()

# multi-chip systems (chips), selectable with ``--system``
SYSTEMS: Dict[str, Tuple[int, str]] = {
    "single-chip": (1, "one Loihi 2 chip (e.g. an Oheo Gulch board)"),
    "kapoho-point": (8, "Kapoho Point: 8 Loihi 2 chips [kapoho]"),
    "hala-point": (1152, "Hala Point: 1,152 Loihi 2 chips [hala]"),
}
DEFAULT_SYSTEM = "kapoho-point"

# the per-core limits the mapper checks, with the words used in messages
CORE_LIMITS: Dict[str, str] = {
    "neurons": "neurons_per_core",
    "synapse_words": "synapse_words_per_core",
    "axons_in": "axons_in_per_core",
    "axons_out": "axons_out_per_core",
    "state_bytes": "state_bytes_per_core",
    "groups": "neuron_groups_per_core",
}
LIMIT_WORDS: Dict[str, str] = {
    "neurons": "neurons per core",
    "synapse_words": "synapse memory (64-bit words) per core",
    "axons_in": "input axons per core",
    "axons_out": "output axon entries per core",
    "state_bytes": "neuron state bytes per core",
    "groups": "populations per core",
}


def resource_table(res: Loihi2Resources = LOIHI2) -> str:
    """The model as a Markdown table (docs/loihi2-resources.md embeds it)."""
    rows = ["| figure | value | unit | kind | sources | note |", "|---|---|---|---|---|---|"]
    for name, f in res.figures():
        val = f"{f.value:,.0f}" if float(f.value).is_integer() else f"{f.value:g}"
        rows.append(f"| `{name}` | {val} | {f.unit} | {f.kind} | {', '.join(f.sources) or '-'} | {f.note} |")
    rows.append("")
    rows.append("Sources:")
    rows.append("")
    for k, s in SOURCES.items():
        rows.append(f"- **{k}**: {s}")
    return "\n".join(rows)
