"""Readable tables of a graph (``snnc info``)."""
from __future__ import annotations

from typing import List

import numpy as np

from .fixed import FixedCubaLI, FixedCubaLIF, FixedSigmaDelta, FixedSynapse
from .ir import Average, Conv2d, CubaLI, CubaLIF, Delay, Delta, Dense, Graph, Input, Sigma, SigmaDelta, SumPool2d


def _fmt(v) -> str:
    a = np.asarray(v)
    if a.size == 1:
        x = a.item()
        return f"{x:.6g}" if isinstance(x, float) else str(x)
    return f"[{a.min():.4g}..{a.max():.4g}]" if a.dtype.kind == "f" else f"[{a.min()}..{a.max()}]"


def describe(node) -> str:
    """One line of a node's float parameters."""
    if isinstance(node, Dense):
        return f"weight {node.weight.shape[0]}x{node.weight.shape[1]} {_fmt(node.weight)}"
    if isinstance(node, Conv2d):
        return (f"weight {'x'.join(map(str, node.weight.shape))} stride {node.stride} pad {node.padding}"
                f" dil {node.dilation} groups {node.groups}")
    if isinstance(node, SumPool2d):
        return f"kernel {node.kernel} stride {node.stride} pad {node.padding} weight {_fmt(node.weight)}"
    if isinstance(node, Delay):
        return f"steps {_fmt(node.steps)}"
    if isinstance(node, CubaLIF):
        extra = "" if not node.refractory else f" refractory {node.refractory}"
        if node.reset_interval:
            extra += f" reset every {node.reset_interval} at {node.reset_offset}"
        return (f"du {_fmt(node.current_decay)} dv {_fmt(node.voltage_decay)} vth {_fmt(node.threshold)}"
                f" bias {_fmt(node.bias)} reset {node.reset}{' delayed' if node.reset_delay else ''}"
                f" {node.spike_compare}"
                f" S {node.state_scale}{extra}")
    if isinstance(node, CubaLI):
        return (f"du {_fmt(node.current_decay)} dv {_fmt(node.voltage_decay)} bias {_fmt(node.bias)}"
                f" S {node.state_scale} read-out v")
    if isinstance(node, SigmaDelta):
        return (f"vth {_fmt(node.threshold)} bias {_fmt(node.bias)} {node.activation}"
                + (" cum_error" if node.cumulative_error else "")
                + f" spike_exp {node.spike_exp} state_exp {node.state_exp} S 2^{node.state_scale.bit_length() - 1}")
    if isinstance(node, Delta):
        return (f"vth {_fmt(node.threshold)}" + (" cum_error" if node.cumulative_error else "")
                + f" spike_exp {node.spike_exp} state_exp {node.state_exp} S 2^{node.state_scale.bit_length() - 1}")
    if isinstance(node, Sigma):
        return f"S 2^{node.state_scale.bit_length() - 1}"
    if isinstance(node, Average):
        return f"mean of {node.groups} groups"
    if isinstance(node, Input) and node.kind == "graded":
        return f"graded values, grid 2^-{node.frac_bits}"
    if isinstance(node, Input) and node.kind != "spikes":
        return f"{node.kind} drive"
    return ""


def describe_fixed(fx) -> str:
    """One line of a node's Loihi integer parameters."""
    if isinstance(fx, FixedSynapse):
        return (f"w {_fmt(fx.weight)} exp {fx.weight_exp}"
                + (f" graded {fx.num_message_bits}b" if getattr(fx, "num_message_bits", 0) else "")
                + (f" (input 2^-{fx.input_frac_bits})" if fx.input_frac_bits else ""))
    if isinstance(fx, FixedSigmaDelta):
        return (f"vth {_fmt(fx.vth)} bias {_fmt(fx.bias)} <<{fx.spike_exp + fx.state_exp} {fx.act_mode}"
                + (" cum_error" if fx.cum_error else "") + f" msg >>{fx.state_exp}")
    if isinstance(fx, FixedCubaLI):
        return f"du {fx.decay_u} dv {fx.decay_v} bias {_fmt(fx.bias_mant)}<<{fx.bias_exp} S {fx.state_scale}"
    if isinstance(fx, FixedCubaLIF):
        return (f"du {fx.decay_u} dv {fx.decay_v} vth {_fmt(fx.vth)} bias {_fmt(fx.bias_mant)}<<{fx.bias_exp}"
                + (f" ref {fx.refractory}" if fx.refractory else "") + f" S {fx.state_scale}")
    return ""


def table(rows: List[List[str]], header: List[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def graph_table(graph: Graph) -> str:
    """Nodes in graph order: name, type, inputs, output shape, float and fixed parameters."""
    from .passes import infer_shapes
    shapes = infer_shapes(graph)
    rows = []
    for name, node in graph.nodes.items():
        rows.append([name, type(node).__name__, ",".join(graph.predecessors(name)) or "-",
                     "x".join(map(str, shapes[name])), describe(node),
                     describe_fixed(graph.fixed[name]) if name in graph.fixed else ""])
    return table(rows, ["node", "type", "from", "shape", "parameters (float)", "Loihi fixed point"])


def quantization_table(graph: Graph) -> str:
    """The quantization report: per node and parameter, rounded/clipped counts and max error."""
    report = graph.metadata.get("quantization") or []
    rows = [[r["node"], r["param"], r["values"], r["rounded"], r["clipped"], f"{r['max_error']:.3g}"]
            for r in report]
    return table(rows, ["node", "parameter", "values", "rounded", "clipped", "max |error|"])


def lossy_summary(graph: Graph) -> str:
    """One line when the quantization rounded or clipped parameters ('' when exact): how many
    values were clipped (outside Loihi 2's range) and rounded, where, and the largest error."""
    report = graph.metadata.get("quantization") or []
    clipped = [r for r in report if r["clipped"]]
    rounded = [r for r in report if r["rounded"]]
    if not clipped and not rounded:
        return ""
    parts = []
    for what, rows, key in (("clipped", clipped, "clipped"), ("rounded", rounded, "rounded")):
        if rows:
            worst = max(rows, key=lambda r: r["max_error"])
            parts.append(f"{sum(r[key] for r in rows)} value(s) {what} in "
                         f"{', '.join(sorted({r['node'] + ' ' + r['param'] for r in rows}))[:160]}"
                         f" (largest error {worst['max_error']:.3g} in {worst['node']} {worst['param']})")
    return "quantization to Loihi 2 fixed point is lossy: " + "; ".join(parts) + " (snnc info MODEL shows the report)"
