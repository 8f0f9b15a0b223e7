"""llama.cpp's server killed mid-sweep: the sentinel calls it death from that engine's own signals
(its /health refused) within 15 s, the point that meets it fails with the verdict and the points
after it error at once. The suites against it with no profile: test_no_profile_real.py.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest
from helpers.killer import sweep_until_killed
from helpers.realserver import RealServer

pytestmark = pytest.mark.real

SUITES = ("health", "perf", "needle", "crash", "robustness")
PROFILE = """\
[profile]
name = "llamacpp-smollm2"
description = "llama.cpp's server, SmolLM2-135M-Instruct, as scripts/real-llamacpp serves it"

[server]
adapter = "llama.cpp"

[deployment]
served_model_name = "SmolLM2-135M-Instruct"
max_model_len = 4096

[perf]
concurrency = [1, 2, 4]
input_tokens = 160
max_tokens = 32
"""


def test_server_killed_mid_sweep_is_death(
    pytester: pytest.Pytester, start_real_llamacpp: Callable[..., RealServer]
) -> None:
    """Killed while N=1 runs: N=1 fails with the verdict, N=2 and N=4 error at once, within 15 s.

    A profile of the deployment, so that nothing but the sweep sends a request (discovery would
    probe the server's speed first, and the kill waits for the first request processing).
    """
    profile = pytester.path / "llamacpp.toml"
    profile.write_text(PROFILE)
    server = start_real_llamacpp()
    pid = int(server.log.with_suffix(".pid").read_text())  # the process group scripts/real-llamacpp made
    kill = lambda: os.killpg(pid, signal.SIGKILL)  # noqa: E731
    sweep_until_killed(pytester, server, profile, "llamacpp:requests_processing", kill)
