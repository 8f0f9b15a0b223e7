"""The twin's virtual clock: stamps free of the host's scheduling, told only to a client that asks."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Sequence

import requests

from pytest_gx10.client import VllmClient, aio
from pytest_gx10.fake import VIRTUAL_ARRIVAL_HEADER, VIRTUAL_TIME_HEADER, FakeServer
from pytest_gx10.fake.engine import Engine, Output, SamplingParams
from pytest_gx10.fake.model import write_script
from pytest_gx10.fake.steptime import LinearStepTime, StepWork, step_time_from_profile
from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.profiles import load_profile

CPU = load_profile("smollm2-cpu")  # no speculative decoding: one token per decode step
TOK = Tokenizer()
STEP = LinearStepTime(base_s=0.005, prefill_token_s=0.001, decode_seq_s=0.015)  # a lone decode: 20 ms


def prompt(n: int, salt: int = 0) -> list[int]:
    words = TOK.word_ids
    return [words[(i * 7 + salt * 13) % len(words)] for i in range(n)]


async def stream(engine: Engine, rid: str, ids: Sequence[int], max_tokens: int) -> list[Output]:
    script = write_script(TOK, ids, "", kind="completion", reasoning=False)
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
    return [out async for out in engine.add_request(rid, ids, script, params)]


def test_a_late_host_does_not_stretch_the_virtual_steps() -> None:
    async def main() -> tuple[list[Output], float]:
        engine = Engine(CPU, TOK, time_scale=20.0, step_time=STEP)
        engine.start()

        async def hog() -> None:  # the host loses the event loop for 30 ms, three times
            for _ in range(3):
                await asyncio.sleep(0.01)
                time.sleep(0.03)

        try:
            outs, _ = await asyncio.gather(stream(engine, "r0", prompt(50), 12), hog())
        finally:
            await engine.stop()
        return outs, engine.step_time.step_s(StepWork(0, 0, 1)) / engine.speed_factor

    outs, decode_s = asyncio.run(main())
    stamps = [o.t_s for o in outs]
    assert all(t is not None for t in stamps)
    gaps = [b - a for a, b in itertools.pairwise(stamps) if a is not None and b is not None]
    # The host lost 90 ms of wall (1.8 simulated seconds at scale 20); the virtual steps did not.
    assert len(gaps) == 11
    assert all(abs(g - decode_s) < 1e-9 for g in gaps), gaps


def test_a_burst_arriving_during_a_step_shares_one_arrival_time() -> None:
    async def main() -> tuple[list[float], float]:
        engine = Engine(CPU, TOK, time_scale=20.0, step_time=STEP)
        engine.start()
        try:
            first = asyncio.ensure_future(stream(engine, "r0", prompt(400), 4))
            await asyncio.sleep(0.002)  # the others land a few ms later, while the first prefills
            rest = [asyncio.ensure_future(stream(engine, f"r{i}", prompt(400, i), 4)) for i in (1, 2, 3)]
            await asyncio.sleep(0)
            arrivals = [s.stream.arrival_s for s in engine._by_id.values()]
            await asyncio.gather(first, *rest)
        finally:
            await engine.stop()
        return arrivals, engine.now_s()

    arrivals, end = asyncio.run(main())
    assert len(arrivals) == 4
    assert len(set(arrivals)) == 1, arrivals  # the step boundary they join, not the host's milliseconds
    assert 0 < arrivals[0] < end


def _stream_raw(server: FakeServer, virtual: bool) -> requests.Response:
    body = {
        "model": server.served_model_name,
        "prompt": "The river",
        "max_tokens": 12,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {VIRTUAL_TIME_HEADER: "1"} if virtual else {}
    return requests.post(server.url + "/v1/completions", json=body, headers=headers, timeout=30)


def test_virtual_times_are_told_only_when_asked(cpu_twin: FakeServer) -> None:
    plain = _stream_raw(cpu_twin, virtual=False)
    assert VIRTUAL_ARRIVAL_HEADER not in plain.headers
    assert ": t=" not in plain.text
    assert all(block.startswith("data: ") for block in plain.text.split("\n\n")[:-1])

    told = _stream_raw(cpu_twin, virtual=True)
    arrival = float(told.headers[VIRTUAL_ARRIVAL_HEADER])
    blocks = told.text.split("\n\n")[:-1]
    assert blocks
    assert all(re.fullmatch(r": t=\d+\.\d{9}\ndata: .*", b, re.S) for b in blocks), blocks[:3]
    stamps = [float(b.split("\n", 1)[0][4:]) for b in blocks]
    assert stamps == sorted(stamps)
    assert stamps[0] > arrival
    # Same events otherwise: the data lines are the stream a vLLM client sees.
    assert len(blocks) == len(plain.text.split("\n\n")[:-1])


def test_the_client_measures_in_virtual_time_when_it_asks(cpu_twin: FakeServer) -> None:
    body = {"prompt": "The river", "max_tokens": 24, "ignore_eos": True}
    with VllmClient(cpu_twin.url, virtual_time=True) as client:
        result = client.completion_stream(body)
    assert result.ok, result.describe()
    assert result.virtual_arrival_s is not None
    with VllmClient(cpu_twin.url) as plain_client:
        plain = plain_client.completion_stream(body)
    assert plain.ok
    assert plain.virtual_arrival_s is None
    assert plain.wall_end_ns is None
    # The Unix end time stays on the client's clock: when the last byte came, not the twin's stamp.
    assert result.wall_end_ns is not None
    assert result.wall_end == result.wall_end_ns >= result.chunks[-1].t_ns - 10**9
    assert result.summary()["ended_unix_s"] >= result.summary()["sent_unix_s"]
    # Each gap between chunks is a whole number of the profile's decode steps, to the nanosecond.
    decode = step_time_from_profile(CPU).step_s(StepWork(0, 0, 1)) / CPU.twin.speed_factor
    chunks = result.chunks
    gaps = [(b.t_ns - a.t_ns) / 1e9 * result.time_scale for a, b in itertools.pairwise(chunks)]
    assert len(gaps) >= 10
    assert all(abs(g / decode - round(g / decode)) < 1e-5 for g in gaps), gaps


def test_the_event_loop_client_stamps_alike(cpu_twin: FakeServer) -> None:
    body = {"prompt": "The river", "max_tokens": 24, "ignore_eos": True}
    with VllmClient(cpu_twin.url, virtual_time=True) as client:
        client.served_model()
        result = asyncio.run(aio.stream(client, "/v1/completions", body))
    assert result.ok, result.describe()
    assert result.virtual_arrival_s is not None
    decode = step_time_from_profile(CPU).step_s(StepWork(0, 0, 1)) / CPU.twin.speed_factor
    gaps = [(b.t_ns - a.t_ns) / 1e9 * result.time_scale for a, b in itertools.pairwise(result.chunks)]
    assert len(gaps) >= 10
    assert all(abs(g / decode - round(g / decode)) < 1e-5 for g in gaps), gaps
    # The stream's end is its last event's virtual time, not when the client got to it.
    assert result.end_ns >= result.chunks[-1].t_ns
    assert (result.end_ns - result.chunks[-1].t_ns) / 1e9 * result.time_scale < 1e-6
