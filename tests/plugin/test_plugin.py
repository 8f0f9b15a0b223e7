"""The plugin as users meet it: option sources, the header, the default twin, bad endpoints, xdist."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEALTH = ROOT / "suites" / "health"

USES_CLIENT = """
def test_health(gx10_client):
    assert gx10_client.health() == 200

def test_model(gx10_model, gx10_profile):
    assert gx10_model == gx10_profile.deployment.served_model_name
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_header_names_each_source(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI, env and ini values show in the header with where they came from; the key does not."""
    monkeypatch.setenv("GX10_MODEL", "from-env")
    monkeypatch.setenv("GX10_API_KEY", "sk-do-not-print")
    pytester.makeini("[pytest]\ngx10_profile = smollm2-cpu\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--gx10-timeout=7")
    result.stdout.fnmatch_lines(
        [
            "gx10 target: embedded twin of profile smollm2-cpu (twin, time scale 1) on a free loopback port [[]no --gx10-endpoint[]]",
            "gx10 model: from-env [[]env GX10_MODEL[]]",
            "gx10 profile: smollm2-cpu [[]ini gx10_profile[]]",
            "gx10 timeout: 7 s [[]--gx10-timeout[]]; api key: set [[]env GX10_API_KEY[]]",
        ]
    )
    assert "sk-do-not-print" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)


def test_endpoint_header(pytester: pytest.Pytester) -> None:
    """With --gx10-endpoint the header names it; profile settings fill what is not given."""
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--gx10-endpoint=http://head:8000", "--gx10-profile=smollm2-cpu")
    result.stdout.fnmatch_lines(
        [
            "gx10 target: http://head:8000 [[]--gx10-endpoint[]]",
            "gx10 timeout: 30 s [[]profile smollm2-cpu[]]*",
        ]
    )


def test_malformed_profile_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A broken profile stops the run before any test, naming file, key and problem."""
    bad = pytester.path / "broken.toml"
    bad.write_text('[deployment]\nserved_model_name = "m"\nmax_model_len = "long"\n')
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(f"--gx10-profile={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*malformed profile {bad}: key 'deployment.max_model_len': expected integer*"]
    )


def test_bad_timeout_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A bad value names the setting, its source and the flag."""
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--gx10-timeout=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*timeout = 'soon' from --gx10-timeout: not a number of seconds*"])


SEES_TWINS = """
import os
from pathlib import Path

def test_twin_runs_here(gx10_client):
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
            where = os.readlink(cmdline.parent / "cwd")
        except OSError:
            continue
        if b"pytest_gx10.fake" in text and where == os.getcwd():
            pids.append(cmdline.parent.name)
    Path("twins.txt").write_text(" ".join(pids))
"""


def test_default_target_is_the_twin(pytester: pytest.Pytester) -> None:
    """With no endpoint the session starts one twin of the profile and stops it afterwards."""
    pytester.makepyfile(test_client=USES_CLIENT, test_sees=SEES_TWINS)
    before = _twins(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert len((pytester.path / "twins.txt").read_text().split()) == 1  # seen while the run went on
    assert _twins(pytester.path) - before == set()


def _twins(cwd: Path) -> set[str]:
    """Command lines (with pid) of the twin processes running now in ``cwd`` (one run's, not others')."""
    out = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            where = os.readlink(cmdline.parent / "cwd")
        except OSError:
            continue
        if "pytest_gx10.fake" in text and where == str(cwd):
            out.add(f"{cmdline.parent.name} {text}")
    return out


def test_refused_endpoint_fails_fast_with_one_line(pytester: pytest.Pytester) -> None:
    """Nothing listening: every test errors at once, naming the URL and 'refused', no traceback."""
    url = f"http://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    result = pytester.runpytest_subprocess(
        str(HEALTH), f"--gx10-endpoint={url}", "--gx10-timeout=60", "-p", "no:cacheprovider"
    )
    elapsed = time.monotonic() - start
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0
    assert outcomes.get("error", 0) + outcomes.get("errors", 0) >= 10
    result.stdout.fnmatch_lines([f"*gx10 endpoint {url}/v1/models: connection refused*"])
    assert "Traceback" not in result.stdout.str()
    # Not a speed figure: a run that waited out even one --gx10-timeout would take over 60 s.
    assert elapsed < 60, f"the run took {elapsed:.1f} s"


def test_silent_endpoint_times_out_within_the_timeout(pytester: pytest.Pytester) -> None:
    """A port that accepts but never answers: errors after --gx10-timeout, naming the URL."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        pytester.makepyfile(USES_CLIENT)
        start = time.monotonic()
        result = pytester.runpytest_subprocess(
            f"--gx10-endpoint={url}", "--gx10-timeout=1", "-p", "no:cacheprovider"
        )
        elapsed = time.monotonic() - start
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([f"*gx10 endpoint {url}/v1/models: timed out after 1 s*"])
    assert elapsed < 15


def test_not_an_openai_api(pytester: pytest.Pytester) -> None:
    """An HTTP server that is not vLLM is named as such."""
    import http.server
    import threading

    class NotVllm(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"nope")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotVllm)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        pytester.makepyfile(USES_CLIENT)
        result = pytester.runpytest_subprocess(f"--gx10-endpoint={url}", "-p", "no:cacheprovider")
    finally:
        server.shutdown()
        server.server_close()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [f"*gx10 endpoint {url}/v1/models: not an OpenAI-compatible API (GET /v1/models gave HTTP 404)*"]
    )


@pytest.mark.parametrize("workers", ["0", "2"])
def test_health_suite_same_outcomes_with_xdist(pytester: pytest.Pytester, workers: str) -> None:
    """The health suite passes the same with -n 0 and -n 2; the workers share the controller's twin."""
    before = _twins(pytester.path)
    result = pytester.runpytest_subprocess(str(HEALTH), "-n", workers, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=_health_test_count())
    assert _twins(pytester.path) - before == set()


def _health_test_count() -> int:
    # 6 plain tests, 5 stream tests x 2 endpoints, 1 chat-only role-chunk test.
    return 6 + 5 * 2 + 1


def test_api_key_reaches_twin_and_client_but_no_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin requires the key, the client sends it, and it is printed nowhere."""
    monkeypatch.setenv("GX10_API_KEY", "sk-gx10-test-key")
    pytester.makepyfile(
        USES_CLIENT
        + """
import requests

def test_twin_demands_the_key(gx10_target):
    assert requests.get(gx10_target.url + "/v1/models", timeout=5).status_code == 401
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", "-v")
    result.assert_outcomes(passed=3)
    assert "sk-gx10-test-key" not in result.stdout.str() + result.stderr.str()
