"""The one compiled part of snnc: the reference's kernels (snnc/backends/csrc/kernels.c), loaded
with ctypes by snnc/backends/ckernels.py. Optional: without a C compiler the install goes on and
the reference runs its numpy path (the same integers, slower). Everything else is pyproject.toml."""
from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "snnc.backends._kernels", ["snnc/backends/csrc/kernels.c"],
    # the numpy path's IEEE double operations, bit for bit: no fast-math, no fused multiply-add
    # (-fno-trapping-math only lets trunc vectorize: FP exception flags, not values)
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-trapping-math"],
    optional=True)])
