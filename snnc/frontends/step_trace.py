"""The per-step graph of a time-stepped PyTorch SNN (snnTorch, Norse), from one recorded run.

Two code styles are read (``record_trace`` records the calls):

- a *step module* (snnTorch ``init_hidden=True`` neurons in ``nn.Sequential``, Norse
  ``SequentialState`` or a bare cell): it computes one time step; snnc calls it once on
  ``x[0]`` and the recording is the step graph;
- a *looped forward*: ``forward(x)`` runs ``for step in range(T)``, calling each layer once per
  step (``self.lif(cur, mem)`` with the state passed back in) on ``x[step]`` or on a static
  ``x``, and returns ``torch.stack(list_of_steps, dim=0)``. The unrolled recording is rolled
  back into step 0's graph, after checking that every step computed the same graph and that each
  neuron's state arguments are its own previous outputs (or fresh zeros).

The result is a torch.fx graph of one step: its placeholder is the input at one step
(``(N, ...)``), neuron calls take only their input, and ``node.meta["shape"]`` is the per-step
shape. snnc turns it into a time-last ONNX file (step_export).
"""
from __future__ import annotations

import operator
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional

import torch
import torch.fx

from ..errors import SnncError
from . import record_trace


def _nodes_in(obj) -> List[torch.fx.Node]:
    return [a for a in record_trace._flat(obj) if isinstance(a, torch.fx.Node)]


def step_module_graph(module, x_step: torch.Tensor, is_leaf) -> torch.fx.GraphModule:
    """Record one call of a step module on ``x_step`` (one time step)."""
    return record_trace.record(module, x_step, is_leaf)


def rolled_graph(module, x: torch.Tensor, is_leaf, state_args: Callable[[torch.nn.Module], int]
                 ) -> SimpleNamespace:
    """Record ``module(x)`` (a looped forward) and roll it into one step.

    ``state_args(m)``: for a neuron leaf, how many leading positional args are data (1); the
    others are its state; 0 for non-neurons (all args are data).
    Returns ``gm`` (the step graph), ``steps`` (T of the recording), ``static`` (True when the
    same x feeds every step) and ``notes``.
    """
    gm = record_trace.record(module, x, is_leaf)
    g = gm.graph
    ph = next(n for n in g.nodes if n.op == "placeholder")
    tag: Dict[torch.fx.Node, Optional[int]] = {ph: None}
    calls: Dict[str, int] = {}
    sliced = static = False
    for n in g.nodes:
        if n.op in ("placeholder", "output"):
            continue
        if n.op == "call_module":
            m = gm.get_submodule(n.target)
            k = calls.get(n.target, 0)
            calls[n.target] = k + 1
            tag[n] = k
            ndata = state_args(m) or len(n.args)
            _check_inputs(n, _nodes_in([n.args[:ndata], {} if state_args(m) else n.kwargs]), tag, k)
            _check_state(n, [n.args[ndata:], n.kwargs if state_args(m) else {}], tag, k)
            continue
        ins = _nodes_in([n.args, n.kwargs])
        if ph in ins and _is_time_slice(n, ph):
            tag[n] = n.args[1]
            sliced = True
            continue
        if ph in ins:
            static = True
        steps = {tag[a] for a in ins if tag.get(a) is not None}
        tag[n] = (steps.pop() if len(steps) == 1 else "across steps") if steps else None
    if sliced and static:
        raise SnncError(f"{type(module).__name__}.forward reads the input both per step (x[step]) and "
                        "whole; snnc exports one of the two")
    counts = set(calls.values())
    if len(counts) != 1:
        raise SnncError(f"{type(module).__name__}.forward calls its layers unequal numbers of times "
                        f"({calls}); snnc exports a forward that calls each layer once per time step")
    steps = counts.pop()
    if sliced and steps != x.shape[0]:
        raise SnncError(f"forward() ran {steps} steps on an input of {x.shape[0]} steps (time first)")
    _check_same_steps(g, tag, steps)
    step = _step_zero(gm, g, ph, tag, steps, state_args)
    return SimpleNamespace(gm=step, steps=steps, static=not sliced, notes=[])


def _is_time_slice(n, ph) -> bool:
    return (n.op in ("call_method", "call_function") and n.args and n.args[0] is ph
            and getattr(n.target, "__name__", n.target) == "__getitem__"
            and len(n.args) == 2 and isinstance(n.args[1], int))


def _check_inputs(n, ins, tag, k):
    for a in ins:
        if tag.get(a) not in (None, k):
            raise SnncError(f"layer '{n.target}' at step {k} reads a value of step {tag.get(a)}; snnc "
                            "exports forwards whose layers read the same step (state aside)")


def _check_state(n, raw, tag, k):
    """A neuron's state args are fresh zeros at step 0 and its own outputs of the previous step
    after that (``raw``: the recorded args, nodes for recorded tensors)."""
    for a in record_trace._flat(raw):
        if isinstance(a, torch.fx.Node):
            src = a
            while src.op == "call_function" and src.target is operator.getitem:
                src = src.args[0]
            ok = k > 0 and src.op == "call_module" and src.target == n.target and tag.get(src) == k - 1
        elif isinstance(a, torch.Tensor):
            ok = k == 0 and not bool(torch.count_nonzero(a))
        else:
            continue
        if not ok:
            raise SnncError(f"neuron '{n.target}' at step {k} gets a state that is not its own state of "
                            "the previous step (or zeros at step 0); snnc exports the library's own "
                            "recurrence: pass back the state the neuron returned, starting from "
                            "init_leaky()/reset_mem() or None")


def _check_same_steps(g, tag, steps):
    sig: Dict[int, List] = {k: [] for k in range(steps)}
    for n in g.nodes:
        k = tag.get(n)
        if isinstance(k, int) and 0 <= k < steps and n.op != "output":
            sig[k].append((n.op, n.target if isinstance(n.target, str) else getattr(n.target, "__name__", "")))
    for k in range(1, steps):
        if sig[k] != sig[0]:
            raise SnncError(f"forward() computes a different graph at step {k} than at step 0; snnc "
                            "exports forwards that do the same thing every step")


def _step_zero(gm, g, ph, tag, steps, state_args) -> torch.fx.GraphModule:
    out = next(n for n in g.nodes if n.op == "output")
    new = torch.fx.Graph()
    x = new.placeholder("x")
    x.meta["shape"] = ph.meta["shape"]
    env: Dict[torch.fx.Node, torch.fx.Node] = {ph: x}
    for n in g.nodes:
        if n.op in ("placeholder", "output") or tag.get(n) not in (None, 0):
            continue
        if _is_time_slice(n, ph):
            env[n] = x
            x.meta["shape"] = n.meta["shape"]
            continue
        if not all(a in env for a in _nodes_in([n.args, n.kwargs])):
            continue                      # reads later steps only (e.g. the final torch.stack)
        args, kwargs = n.args, n.kwargs
        if n.op == "call_module":
            k = state_args(gm.get_submodule(n.target))
            if k:
                args, kwargs = args[:k], {}
        c = new.node_copy(n, lambda a: env[a]) if (args, kwargs) == (n.args, n.kwargs) else \
            new.create_node(n.op, n.target, torch.fx.map_arg(args, lambda a: env[a]),
                            torch.fx.map_arg(kwargs, lambda a: env[a]), n.name)
        c.meta = dict(n.meta)
        env[n] = c
    new.output(_rolled_outputs(out.args[0], tag, env, steps))
    return torch.fx.GraphModule(gm, new)


def _rolled_outputs(res, tag, env, steps):
    """forward()'s returns: ``torch.stack(per-step list, dim=0)`` -> the step-0 node; others are
    left out (step_export drops them with a note)."""
    items = list(res) if isinstance(res, (tuple, list)) else [res]
    outs = []
    for o in items:
        if isinstance(o, torch.fx.Node) and o.op == "call_function" and o.target in (torch.stack,) \
                and (o.args[1] if len(o.args) > 1 else o.kwargs.get("dim", 0)) == 0:
            seq = list(o.args[0])
            if [tag.get(a) for a in seq] == list(range(steps)) and seq[0] in env:
                outs.append(env[seq[0]])
                continue
        outs.append(None)
    return tuple(outs) if len(outs) > 1 else outs[0]
