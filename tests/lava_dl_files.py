"""Where lava-dl's wheel ships its netx test networks and ground truth (site-packages
``tests/lava/lib/dl/netx/``), found once for every test that reads them, without importing
``lava.lib.dl.netx`` (which sets multiprocessing's start method)."""
import importlib.util
import os

_spec = importlib.util.find_spec("lava")
_SITE = os.path.dirname(next(iter(_spec.submodule_search_locations))) if _spec else ""
NETX_ROOT = os.path.join(_SITE, "tests", "lava", "lib", "dl", "netx")
GTS = os.path.join(NETX_ROOT, "gts")
PILOT = os.path.join(GTS, "pilotnet_lif")
PILOT_LAYERS = {"input0": "input", "conv1": "conv-0", "conv2": "conv-1", "conv3": "conv-2",
                "conv4": "conv-3", "conv5": "conv-4", "dense7": "fc-0", "dense8": "fc-1",
                "dense9": "fc-2"}


def pilot_gt(name, like):
    """PilotNet LIF's recorded ground truth ``name`` (netx's (x, y, f, T) order turned into
    SLAYER's (C, H, W, T)), shaped like ``like``, as int64."""
    import numpy as np
    from snnc.frontends.netx_import import from_xyf
    a = np.load(os.path.join(PILOT, name + ".npy"))
    a = from_xyf(a) if a.ndim == 4 else a.reshape(like.shape[:-1] + a.shape[-1:])
    return a.astype(np.int64)


def write_net(path, layers):
    """A minimal netx HDF5 file: ``layers`` are dicts of datasets (``type``, ``neuron`` group)."""
    import h5py
    with h5py.File(path, "w") as h:
        for i, L in enumerate(layers):
            g = h.create_group(f"layer/{i}")
            for k, v in L.items():
                if k == "type":
                    g.create_dataset("type", (1,), "S10", [v.encode()])
                elif k == "neuron":
                    for nk, nv in v.items():
                        g.create_dataset(f"neuron/{nk}", data=nv)
                else:
                    g.create_dataset(k, data=v)
    return str(path)
