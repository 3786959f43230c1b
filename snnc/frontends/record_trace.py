"""Trace a ``forward`` by running it: the torch.fx graph of what one call actually computed.

torch.fx's symbolic tracing cannot follow Python that inspects values (``.item()``,
``torch.FloatTensor(list)``, ``len``, ``if x.sum() > 0``), which lava-dl's tutorial networks use
to collect per-block spike counts beside their spikes. ``record(module, x, is_leaf)`` instead runs
``module(x)`` once and records, with module hooks and a ``TorchFunctionMode``:

- every call of a leaf module (``is_leaf(m)``) as ``call_module`` (ops inside it are not recorded);
- every torch function or tensor method outside leaves that reads a recorded tensor, as
  ``call_function`` / ``call_method`` (Python loops are unrolled; values that leave torch, e.g.
  ``.item()``, end the data flow there);
- the tensors ``forward`` returns that come from the input.

``spike_path(gm, exportable)`` then keeps the outputs whose whole computation is exportable and
deletes the rest; it returns notes naming what was dropped.
"""
from __future__ import annotations

import operator
from typing import Callable, Dict, List, Tuple

import torch
import torch.fx
from torch.overrides import TorchFunctionMode

from ..errors import SnncError



def _flat(obj) -> List:
    if isinstance(obj, (list, tuple)):
        return [y for x in obj for y in _flat(x)]
    if isinstance(obj, dict):
        return [y for x in obj.values() for y in _flat(x)]
    return [obj]


class _Recording:
    def __init__(self):
        self.graph = torch.fx.Graph()
        self.vals: Dict[int, Tuple[torch.fx.Node, torch.Tensor]] = {}   # id(tensor) -> node
        self.depth = 0
        self.left = set()                         # names of ops whose value left torch (.item())

    def node_of(self, t):
        hit = self.vals.get(id(t)) if isinstance(t, torch.Tensor) else None
        return hit[0] if hit is not None and hit[1] is t else None

    def track(self, t: torch.Tensor, node: torch.fx.Node):
        self.vals[id(t)] = (node, t)            # keeps t alive, so ids are not reused
        node.meta["shape"] = tuple(t.shape)

    def args(self, obj):
        """``obj`` with recorded tensors replaced by their nodes."""
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.args(x) for x in obj) if not hasattr(obj, "_fields") \
                else tuple(self.args(x) for x in obj)
        if isinstance(obj, dict):
            return {k: self.args(v) for k, v in obj.items()}
        n = self.node_of(obj)
        return obj if n is None else n

    def reads_recorded(self, args, kwargs) -> bool:
        return any(self.node_of(a) is not None for a in _flat([args, kwargs]))

    def outputs(self, out, node: torch.fx.Node):
        """Track the tensors of ``out``: a tensor is ``node``; a tuple's items ``node[i]``."""
        if isinstance(out, torch.Tensor):
            self.track(out, node)
        elif isinstance(out, (tuple, list)):
            for i, o in enumerate(out):
                if isinstance(o, (torch.Tensor, tuple, list)):
                    self.outputs(o, self.graph.call_function(operator.getitem, (node, i)))


class _Mode(TorchFunctionMode):
    def __init__(self, rec: _Recording):
        super().__init__()
        self.rec = rec

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        rec = self.rec
        name = getattr(func, "__name__", "")
        mine = not rec.depth and rec.reads_recorded(args, kwargs)
        if mine and name == "__bool__":
            raise SnncError("forward() branches on a value computed from the input (Tensor.__bool__, "
                            "e.g. 'if x.sum() > 0'): neither torch.fx nor snnc's recording tracer "
                            "can export data-dependent control flow; move it to __init__")
        if not mine:
            return func(*args, **kwargs)
        try:
            out = func(*args, **kwargs)
        except Exception as e:      # e.g. torch.abs of a bool tensor (a count line, torch >= 2.x)
            out = self._failed(func, name, args, kwargs, e)
            if out is None:
                raise
            return out
        if not isinstance(out, torch.Tensor) and not (
                isinstance(out, (tuple, list)) and any(isinstance(o, torch.Tensor) for o in out)):
            if name in ("item", "tolist"):
                rec.left.add(name)
            return out                          # .item(), .shape, .dim(): leaves the graph
        a, k = rec.args(args), rec.args(kwargs)
        if name and getattr(torch.Tensor, name, None) is func and args and isinstance(args[0], torch.Tensor):
            node = rec.graph.call_method(name, a, k)
        else:
            node = rec.graph.call_function(func, a, k)
        rec.outputs(out, node)
        return out


    def _failed(self, func, name, args, kwargs, error):
        """An op on a recorded tensor that raised: record it as a failed node (``meta["snnc_failed"]``:
        it and everything computed from it are off the spike path) and let forward go on with its
        first tensor argument in its place (its side outputs, e.g. counts, are dropped anyway)."""
        first = next((a for a in _flat([args, kwargs]) if isinstance(a, torch.Tensor)), None)
        if first is None:
            return None
        rec = self.rec
        node = rec.graph.call_function(func, rec.args(args), rec.args(kwargs))
        node.meta["snnc_failed"] = f"{name or func}: {type(error).__name__}: {str(error)[:80]}"
        rec.outputs(first, node)
        return first


def record(module: torch.nn.Module, example_input: torch.Tensor,
           is_leaf: Callable[[torch.nn.Module], bool]) -> torch.fx.GraphModule:
    """Run ``module(example_input)`` once (no grad) and return the recorded fx graph."""
    rec = _Recording()
    x = example_input.clone()
    rec.track(x, rec.graph.placeholder("x"))
    names = {id(m): n for n, m in module.named_modules()}
    handles = []

    def pre(m, args, kwargs):
        if rec.depth == 0:
            m._snnc_call = (rec.args(args), rec.args(kwargs))
        rec.depth += 1

    def post(m, args, kwargs, out):
        rec.depth -= 1
        if rec.depth == 0:
            a, k = m.__dict__.pop("_snnc_call")
            if rec.reads_recorded(args, kwargs):
                rec.outputs(out, rec.graph.call_module(names[id(m)], a, k))

    for m in module.modules():
        if m is not module and is_leaf(m):
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True))
    orig_getitem = torch.Tensor.__getitem__

    def getitem(self, idx):   # indexing does not reach TorchFunctionMode (torch 2.3): record it here
        out = orig_getitem(self, idx)
        if not rec.depth and rec.node_of(self) is not None and isinstance(out, torch.Tensor):
            rec.outputs(out, rec.graph.call_method("__getitem__", (rec.node_of(self), rec.args(idx))))
        return out

    try:
        torch.Tensor.__getitem__ = getitem
        with torch.no_grad(), _Mode(rec):
            out = module(x)
    except SnncError:
        raise
    except Exception as e:
        raise SnncError(f"running {type(module).__name__}.forward on example_input "
                        f"{tuple(example_input.shape)} failed ({type(e).__name__}: {str(e)[:200]})") from e
    finally:
        torch.Tensor.__getitem__ = orig_getitem
        for h in handles:
            h.remove()
    rec.graph.output(rec.args(out))
    gm = torch.fx.GraphModule(module, rec.graph)
    gm.meta["snnc_left_torch"] = sorted(rec.left)
    return gm


def spike_path(gm: torch.fx.GraphModule, exportable: Callable[[torch.fx.Node], bool]) -> List[str]:
    """Keep the outputs computed only by ``exportable`` nodes (from the input); delete the rest.

    The output node's argument becomes the kept node (one) or tuple of nodes. Returns notes
    naming each dropped output and the ops that only fed dropped outputs. When no output is
    exportable the graph is left as it is (the exporter then names the first op it cannot export).
    """
    out_node = next(n for n in gm.graph.nodes if n.op == "output")
    ok: Dict[torch.fx.Node, bool] = {}
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            ok[n] = True
        elif n.op != "output":
            ins = [a for a in _flat([n.args, n.kwargs]) if isinstance(a, torch.fx.Node)]
            ok[n] = (exportable(n) and "snnc_failed" not in n.meta
                     and all(ok.get(a, False) for a in ins))
    res = out_node.args[0]
    items = list(res) if isinstance(res, (tuple, list)) else [res]
    kept, notes = [], []
    for i, o in enumerate(items):
        if isinstance(o, torch.fx.Node) and ok.get(o) and o.op != "placeholder":
            kept.append(o)
        elif isinstance(o, torch.fx.Node):
            notes.append(f"forward() output {i} ({_describe(o)}) is not a spike path snnc exports; "
                         "dropped")
        elif isinstance(o, (tuple, list, dict)):
            notes.append(f"forward() output {i} (a sequence of {len(o)} values, e.g. neuron states) "
                         "is not a spike tensor; dropped")
        elif o is None:
            notes.append(f"forward() output {i} is not torch.stack(per-step list, dim=0) of a value "
                         "computed every step; dropped")
        else:
            notes.append(f"forward() output {i} ({type(o).__name__}, not computed from the input "
                         "tensor) dropped")
    if not kept:
        return []                  # nothing exportable: the exporter names the first bad op
    if notes:
        out_node.args = (kept[0] if len(kept) == 1 else tuple(kept),)
    live = set()
    stack = list(kept)
    while stack:
        n = stack.pop()
        if n in live:
            continue
        live.add(n)
        stack += [a for a in _flat([n.args, n.kwargs]) if isinstance(a, torch.fx.Node)]
    dropped: Dict[str, int] = {}
    for n in reversed(list(gm.graph.nodes)):
        if n.op in ("output", "placeholder") or n in live:
            continue
        if n.op != "call_function" or n.target is not operator.getitem:
            what = _describe(n) + (f" (raised when run: {n.meta['snnc_failed']})" if "snnc_failed" in n.meta else "")
            dropped[what] = dropped.get(what, 0) + 1
        gm.graph.erase_node(n)
    if dropped:
        notes.append("ignored (they only compute dropped outputs): "
                     + ", ".join(f"{k} x{v}" if v > 1 else k for k, v in sorted(dropped.items())))
    gm.recompile()
    return notes


def _describe(n: torch.fx.Node) -> str:
    if n.op == "call_module":
        return f"the output of '{n.target}'"
    if n.op == "call_function" and n.target is operator.getitem:
        return f"item {n.args[1]} of {_describe(n.args[0])}"
    t = n.target
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))
