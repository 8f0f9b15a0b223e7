"""The plugin's client asks for the twin's virtual times only when its target is the embedded twin."""

from __future__ import annotations

import pytest

from pytest_gx10.fake import FakeServer

STREAMS = """
def test_stream(gx10_client):
    result = gx10_client.completion_stream({"prompt": "The river", "max_tokens": 8, "ignore_eos": True})
    assert result.ok, result.describe()
    told = result.virtual_arrival_s is not None
    assert gx10_client.virtual_time is told
    print(f"virtual={told}")
"""


def test_the_embedded_twin_is_measured_in_its_virtual_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stream=STREAMS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*virtual=True*"])


def test_an_attached_server_is_measured_on_the_client_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stream=STREAMS)
    with FakeServer("smollm2-cpu", time_scale=50.0) as server:
        result = pytester.runpytest_subprocess(
            f"--gx10-endpoint={server.url}", "--gx10-profile=smollm2-cpu", "-p", "no:cacheprovider", "-s"
        )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*virtual=False*"])
