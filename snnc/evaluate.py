"""``snnc eval``: accuracy of a compiled model over a labelled data set, sharded over processes.

``evaluate(model, data, labels, engine="reference", workers=1, ray=None) -> EvalReport``

- ``data``: spikes (or graded values) ``(N, C[, H, W], T)``, time last; ``labels``: ``(N,)``
  integer classes.
- The read-out decides a sample's class from the model output ``(N, K, T)`` (``readout_scores``):
  ``count`` (spike count over time: rate-coded classifiers, SLAYER, STBP, HM2-BP, ST-RSBP),
  ``trace:TAU`` (TSSL-BP: the output PSC summed over time), ``max``/``mean``/``last`` over time
  (graded or membrane read-outs). The class is the argmax, ties to the lowest class. The default
  is ``graph.metadata["readout"]`` when an exporter recorded one, else ``count``.
- Samples are split into contiguous shards run by ``workers`` local processes (every engine; a
  Lava engine's shard runs in its own Lava child as ``snnc run`` does, so there the workers are
  threads, each waiting on its shard's child: no second process start-up per worker) or by tasks of a Ray
  cluster (``ray="local"`` starts one on this machine, else an address such as ``"auto"`` or
  ``"ray://host:10001"``; Ray is the ``ray`` extra). Every sample of every engine starts from a
  zero state, so the result does not depend on the sharding (tested: 1 vs 2 workers, Ray).
"""
from __future__ import annotations

import json
import math
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from . import api
from .backends import registry
from .compiler.ir import Graph
from .compiler.lower import Network
from .compiler.printing import table
from .errors import SnncError

READOUTS = ("count", "trace:TAU", "max", "mean", "last")


def readout_scores(output: np.ndarray, readout: str) -> np.ndarray:
    """Class scores ``(N, K)`` from an output ``(N, K, T)`` (time last) by ``readout``."""
    y = np.asarray(output, dtype=np.float64)
    y = y.reshape(y.shape[0], -1, y.shape[-1])
    if readout == "count":
        return y.sum(-1)
    if readout == "max":
        return y.max(-1)
    if readout == "mean":
        return y.mean(-1)
    if readout == "last":
        return y[..., -1]
    if readout.startswith("trace:"):
        tau = _trace_tau(readout)
        T = y.shape[-1]
        w = 1 - (1 - 1 / tau) ** (T - np.arange(T))        # sum_t a[t] of a[t] = (1-1/tau) a[t-1] + s[t]/tau
        return (y * w).sum(-1)
    raise SnncError(f"unknown read-out {readout!r}; choose one of {', '.join(READOUTS)}")


def _trace_tau(readout: str) -> float:
    try:
        tau = float(readout.split(":", 1)[1])
    except ValueError:
        tau = float("nan")
    if not (math.isfinite(tau) and tau >= 1):
        raise SnncError(f"read-out {readout!r}: TAU must be a number >= 1 (the PSC time constant in steps)")
    return tau


@dataclass
class EvalReport:
    """What ``snnc eval`` measured. ``per_class``: class -> (correct, samples);
    ``spikes``: total spikes per population over the data set; ``seconds``: wall time."""
    model: str
    engine: str
    readout: str
    samples: int
    accuracy: float
    per_class: Dict[int, Tuple[int, int]]
    spikes: Dict[str, int]
    seconds: float
    workers: int = 1
    cluster: str = "local"
    predictions: List[int] = field(default_factory=list)

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_class"] = {str(k): dict(correct=c, samples=n, accuracy=c / n if n else None)
                          for k, (c, n) in self.per_class.items()}
        d["samples_per_second"] = self.samples_per_second
        return d

    def summary(self) -> str:
        head = (f"{self.model} on {self.engine} ({self.workers} worker(s), {self.cluster}): "
                f"accuracy {100 * self.accuracy:.2f} % of {self.samples} samples, read-out "
                f"{self.readout}, {self.seconds:.2f} s ({self.samples_per_second:.1f} samples/s)")
        rows = [[k, n, f"{100 * c / n:.2f} %" if n else "-"] for k, (c, n) in sorted(self.per_class.items())]
        layers = [[k, v, f"{v / max(self.samples, 1):.1f}"] for k, v in self.spikes.items()]
        return "\n\n".join([head, table(rows, ["class", "samples", "accuracy"]),
                            table(layers, ["population", "spikes", "per sample"])])


def shards(n: int, workers: int, size: Optional[int] = None, engine: str = "reference") -> List[Tuple[int, int]]:
    """Contiguous ``[start, stop)`` shards of ``n`` samples, ``size`` each if given. By default
    about four per worker (an even load, a moving progress bar), at most 256 samples; a Lava
    engine starts a Lava run per shard (a second or more of set-up), so there two per worker of
    at least 16 samples."""
    workers = max(workers, 1)
    if not size and engine in registry.ENGINES and registry.ENGINES[engine].lava:
        size = max(min(n, 16), math.ceil(n / (2 * workers)))
    size = size or max(1, min(256, math.ceil(n / (4 * workers))))
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _run_shard(graph: Network, x: np.ndarray, engine: str, readout: str, timeout: float):
    """One shard of the lowered network ``graph`` -> (class scores (n, K), spikes per population)."""
    r = api.run(graph, x, backend=engine, timeout=timeout)
    return readout_scores(r.output, readout), r.layer_totals()


_WORKER_GRAPH: Dict[str, Network] = {}


def _init_worker(graph: Network) -> None:
    from threadpoolctl import threadpool_limits  # lazy: only in workers
    threadpool_limits(1)          # one BLAS thread per worker: the workers are the parallelism
    _WORKER_GRAPH["graph"] = graph


def _run_shard_in_worker(x, engine, readout, timeout):
    return _run_shard(_WORKER_GRAPH["graph"], x, engine, readout, timeout)


def _local(graph, x, parts, engine, readout, timeout, workers, bar):
    if workers == 1:
        for i, (s, e) in enumerate(parts):
            yield i, _run_shard(graph, x[s:e], engine, readout, timeout)
            bar.update(e - s)
        return
    if registry.ENGINES[engine].lava:
        # a Lava shard already runs in its own child process (one OS process per Lava process,
        # one BLAS thread each): a thread per worker waits on it, no second process start-up
        pool = ThreadPoolExecutor(workers, thread_name_prefix="snnc-eval")
        submit = lambda s, e: pool.submit(_run_shard, graph, x[s:e], engine, readout, timeout)  # noqa: E731
    else:
        ctx = multiprocessing.get_context("spawn")   # no fork of a process that may hold Lava or torch threads
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(graph,))
        submit = lambda s, e: pool.submit(_run_shard_in_worker, x[s:e], engine, readout, timeout)  # noqa: E731
    with pool:
        futures = {submit(s, e): i for i, (s, e) in enumerate(parts)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    i = futures[f]
                    yield i, f.result()
                    bar.update(parts[i][1] - parts[i][0])
        finally:
            for f in pending:
                f.cancel()


def _ray(graph, x, parts, engine, readout, timeout, address, workers, bar):
    try:
        import ray  # lazy: heavy, optional (the 'ray' extra)
    except ImportError:
        raise SnncError("--ray needs Ray: pip install 'snnc[ray]'") from None
    started = not ray.is_initialized()
    if started:
        opts = dict(num_cpus=workers) if address == "local" else dict(address=address)
        try:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **opts)
        except Exception as e:
            raise SnncError(f"--ray {address}: cannot connect to a Ray cluster ({type(e).__name__}: {e})") from None
    try:
        task = ray.remote(_run_shard)
        g = ray.put(graph)
        refs = {task.remote(g, x[s:e], engine, readout, timeout): i for i, (s, e) in enumerate(parts)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                i = refs[ref]
                try:
                    yield i, ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    cause = e.cause if isinstance(getattr(e, "cause", None), SnncError) else None
                    raise cause or SnncError(f"Ray task for samples {parts[i][0]}..{parts[i][1] - 1} "
                                             f"failed: {e}") from None
                bar.update(parts[i][1] - parts[i][0])
    finally:
        if started:
            ray.shutdown()


def check_labels(labels, n: int, what: str = "labels") -> np.ndarray:
    """``(N,)`` non-negative integer classes for ``n`` samples."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise SnncError(f"{what}: shape {tuple(y.shape)}; expected ({n},), one class per sample")
    if y.size and (not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y))
                   or np.any(y != np.round(y)) or y.min() < 0):
        raise SnncError(f"{what}: classes must be non-negative integers")
    return y.astype(np.int64)


def evaluate(model: Union[str, Graph, Network], data: np.ndarray, labels: np.ndarray, engine: str = "reference",
             workers: int = 1, ray: Optional[str] = None, readout: Optional[str] = None,
             shard_size: Optional[int] = None, timeout: float = 600.0, progress: bool = False) -> EvalReport:
    """Accuracy of ``model`` on ``data`` ``(N, C[, H, W], T)`` with ``labels`` ``(N,)``; see the
    module doc for the read-outs and the sharding."""
    registry.get(engine, "engine", reads="graph")            # an unknown name fails now, naming the choices
    if not (isinstance(workers, int) and workers >= 1):
        raise SnncError(f"--workers must be a whole number >= 1, got {workers!r}")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise SnncError(f"--timeout must be a positive number of seconds, got {timeout!r}")
    if shard_size is not None and not (isinstance(shard_size, int) and shard_size >= 1):
        raise SnncError(f"--shard-size must be a whole number >= 1, got {shard_size!r}")
    net = api.lowered(model)             # validated and lowered once: every shard runs it
    graph = net.graph
    x, batched = api.check_input(net, data, "data")
    if not batched:
        raise SnncError(f"data: shape {np.shape(data)} is one sample; give a batch (N, ..., T)")
    if x.shape[0] == 0:
        raise SnncError("data: no samples (N = 0)")
    y = check_labels(labels, x.shape[0])
    readout = readout or graph.metadata.get("readout", "count")
    readout_scores(np.zeros((1, 1, 1)), readout)                       # an unknown read-out fails now
    parts = shards(x.shape[0], workers, shard_size, engine)
    scores: List[Optional[np.ndarray]] = [None] * len(parts)
    spikes: Dict[str, int] = {}
    from tqdm import tqdm  # lazy: only for the bar
    t0 = time.perf_counter()
    with tqdm(total=x.shape[0], disable=not progress, unit="sample", desc=f"eval {engine}") as bar:
        runs = (_ray(net, x, parts, engine, readout, timeout, ray, workers, bar) if ray
                else _local(net, x, parts, engine, readout, timeout, workers, bar))
        for i, (s, counts) in runs:
            scores[i] = s
            for k, v in counts.items():
                spikes[k] = spikes.get(k, 0) + int(v)
    seconds = time.perf_counter() - t0
    pred = np.argmax(np.concatenate(scores), axis=1)
    per_class = {int(k): (int(np.sum((pred == y) & (y == k))), int(np.sum(y == k))) for k in np.unique(y)}
    name = model if isinstance(model, str) else str(graph.metadata.get("source", "graph"))
    return EvalReport(model=name, engine=engine, readout=readout, samples=int(x.shape[0]),
                      accuracy=float(np.mean(pred == y)), per_class=per_class, spikes=spikes,
                      seconds=seconds, workers=workers, cluster=f"ray {ray}" if ray else "local",
                      predictions=[int(p) for p in pred])


def write_json(report: EvalReport, path: str) -> None:
    with open(path, "w") as f:
        json.dump(report.to_dict(), f, indent=1)
