"""snnc.nn: PyTorch modules for training spiking networks with STBP, TSSL-BP, HM2-BP and
ST-RSBP dynamics (as variants of Loihi's CUBA LIF) that ``snnc.export`` writes to snnc's ONNX
dialect and ``snnc.compile`` deploys to Lava / Loihi 2. See docs/methods.md.

Activity is ``(N, C[, H, W], T)``, time last (SLAYER's layout).
"""
from .layers import AvgPool2d, Conv2d, Delay, Flatten, GradedInput, Linear
from .neurons import LIF, hm2, stbp, tssl
from .quant import WeightQuant
from .surrogates import Exponential, Rectangular, SigmoidDerivative, Surrogate, TSSLBP, TSSLGradient
from .reservoir import reservoir
from .spiketrain import SpikeTrainLevel, effect_slope, psp_kernel, spike_psp
from . import encoders, readouts, surrogates

__all__ = ["LIF", "stbp", "tssl", "hm2", "Linear", "Conv2d", "AvgPool2d", "Flatten", "Delay", "GradedInput",
           "WeightQuant", "Rectangular", "SigmoidDerivative", "Exponential", "TSSLGradient", "TSSLBP",
           "Surrogate", "encoders", "readouts", "surrogates", "reservoir", "SpikeTrainLevel", "spike_psp", "psp_kernel",
           "effect_slope"]
