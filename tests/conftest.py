"""Shared fixtures of the test suite (README "Tests").

- ``cli``: ``cli("run", model, "--input", x, "-o", y)`` runs the real ``snnc`` command in a
  subprocess and returns ``(exit code, stdout, stderr)`` (``snnc_cli.run_snnc``).
- ``lava_dl``: lava-dl's own netx test networks and recorded ground truth, shipped in its wheel
  (``lava_dl_files``: ``NETX_ROOT``, ``GTS``, ``PILOT``, ``PILOT_LAYERS``, ``pilot_gt``); the
  test is skipped when they are not installed.
- ``small_chain``, ``small_branchy``, ``small_conv``: the small IR graphs of ``small_nets`` with
  their input spikes, built fresh for each test (tests may edit them).

Helper modules (imported by tests, never collected: no ``test_`` prefix): ``snnc_cli``,
``lava_dl_files``, ``small_nets`` (IR graphs), ``slayer_nets`` (lava-dl SLAYER networks and their
IR by hand), ``nn_nets`` (snnc.nn networks of the four training methods), ``step_nets``
(snnTorch/Norse helpers), ``hostile_models`` (hostile-input writers), ``lava_dl_tutorials``,
``pilotnet_net``, ``pilotnet_sdnn_net``. A test file never imports another test file.
"""
import os

# Lava's runtime sets multiprocessing's start method ("fork") when it is first imported and fails
# ("context has already been set") if anything set it before; torch's ONNX export does, so a test
# file that exports first and then imports a Lava model in-process failed when run on its own.
import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
import pytest

import lava_dl_files
import small_nets
from snnc_cli import run_snnc


@pytest.fixture
def cli():
    """Run ``snnc`` as a user does: ``cli(*args, cwd=None, timeout=600) -> (rc, stdout, stderr)``."""
    return run_snnc


@pytest.fixture(scope="session")
def lava_dl():
    """The ``lava_dl_files`` module (paths of lava-dl's netx ground truth); skips without it."""
    if not os.path.isdir(lava_dl_files.GTS):
        pytest.skip(f"lava-dl's netx ground truth not found at {lava_dl_files.GTS}")
    return lava_dl_files


@pytest.fixture
def small_chain():
    """Input(30) -> per-neuron Delays -> Dense -> LIF(40) -> ... -> LIF(20), and 3 samples x 60 steps."""
    return small_nets.chain_with_delays()


@pytest.fixture
def small_branchy():
    """Fan-in, recurrence, refractory, two outputs and an Average read-out (see small_nets.branchy)."""
    return small_nets.branchy()


@pytest.fixture
def small_conv():
    """Conv -> Pool -> grouped strided Conv -> Flatten -> Dense on 2x10x10 inputs."""
    return small_nets.conv_net()
