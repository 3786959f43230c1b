"""Small snnc.nn networks of the four training methods (STBP, TSSL-BP, HM2-BP, ST-RSBP), shared
by tests/test_methods_nn.py and tests/test_twin.py: ``NETS[method](quantize) -> (net, spikes)``.
Not a test file."""
import torch

import snnc.nn as sn


def _weights(net, gain):
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (sn.Linear, sn.Conv2d)):
                m.weight.mul_(gain)


def stbp_net(q):
    n1, n2, n3 = (sn.stbp(quantize=q) for _ in range(3))
    wq = (lambda n, p=1: n.weight_quant(p)) if q else (lambda n, p=1: None)
    net = torch.nn.Sequential(sn.Conv2d(1, 4, 3, padding=1, weight_quant=wq(n1)), n1, sn.AvgPool2d(2),
                              sn.Conv2d(4, 8, 3, padding=1, weight_quant=wq(n2, 4)), n2, sn.AvgPool2d(2),
                              sn.Flatten(), sn.Linear(32, 10, weight_quant=wq(n3, 4)), n3)
    _weights(net, 3.0)
    return net, (torch.rand(4, 1, 8, 8, 10, generator=torch.Generator().manual_seed(1)) < 0.4).float()


def tssl_net(q):
    n1, n2 = sn.tssl(quantize=q), sn.tssl(quantize=q)
    wq = (lambda n: n.weight_quant()) if q else (lambda n: None)
    net = torch.nn.Sequential(sn.Linear(30, 20, bias=False, weight_quant=wq(n1)), n1,
                              sn.Linear(20, 10, bias=False, weight_quant=wq(n2)), n2)
    _weights(net, 8.0)
    return net, (torch.rand(4, 30, 12, generator=torch.Generator().manual_seed(2)) < 0.4).float()


def hm2_net(q, recurrent=False):
    rec = (torch.rand(20, 20, generator=torch.Generator().manual_seed(0)) - 0.5) * 4 if recurrent else None
    n1 = sn.hm2(threshold=5.0, quantize=q, recurrent=rec)
    n2 = sn.hm2(threshold=5.0, quantize=q, recurrent="lateral", size=10)
    wq = (lambda n: n.weight_quant()) if q else (lambda n: None)
    net = torch.nn.Sequential(sn.Delay(1), sn.Linear(30, 20, bias=False, weight_quant=wq(n1)), n1,
                              sn.Delay(1), sn.Linear(20, 10, bias=False, weight_quant=wq(n2)), n2)
    _weights(net, 20.0)
    return net, (torch.rand(4, 30, 50, generator=torch.Generator().manual_seed(3)) < 0.3).float()


NETS = {"stbp": stbp_net, "tssl": tssl_net, "hm2": hm2_net, "st_rsbp": lambda q: hm2_net(q, True)}
