"""The request plan: filler, shared-prefix and dataset bodies, their facts, and what a result records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.workload import PromptSizeError, sized_prompt
from pytest_gx10.workload.dataset import load_dataset, write_sharegpt_sample
from pytest_gx10.workload.lengths import parse_length
from pytest_gx10.workload.plan import Workload
from pytest_gx10.workload.shared import SharedPrefixPlan

TEMPLATE_PER_MESSAGE = 3  # the stand-in chat template's tokens around each message


def count(prompt: str | list[dict[str, str]]) -> int:
    """A stand-in server count: words for a completion prompt; words plus template tokens for a chat."""
    if isinstance(prompt, str):
        return len(prompt.split())
    return sum(len(m["content"].split()) + TEMPLATE_PER_MESSAGE for m in prompt) + 1


def test_filler_chat_is_the_sized_prompt_of_today() -> None:
    work = Workload("filler", parse_length("300"), seed=1, edition="abc")
    body, facts = work.body(2, count=count, chat=True, point="N=4", max_tokens_default=128, ignore_eos=True)
    today = sized_prompt(
        lambda t: count([{"role": "user", "content": t}]),
        300,
        seed="N=4 request 2",
        chat=True,
        header="Story 3, N=4, edition abc.\n\n",
    )
    assert body == {**today.body(), "max_tokens": 128, "temperature": 0, "ignore_eos": True}
    assert count(body["messages"]) == 300
    assert facts.as_dict() == {
        "index": 2,
        "kind": "filler",
        "intended_input_tokens": 300,
        "input_tokens": 300,
        "output_tokens": 128,
        "group": None,
        "entry": None,
    }


def test_filler_draws_lengths_whatever_the_build_order() -> None:
    work = Workload(
        "filler", parse_length("uniform:50:400"), parse_length("lognormal:64:0.5:max=200"), seed=5
    )
    forward = [work.body(i, count=count, chat=False, max_tokens_default=9)[1] for i in range(12)]
    again = Workload(
        "filler", parse_length("uniform:50:400"), parse_length("lognormal:64:0.5:max=200"), seed=5
    )
    backward = [again.body(i, count=count, chat=False, max_tokens_default=9)[1] for i in reversed(range(12))][
        ::-1
    ]
    assert forward == backward
    assert [f.intended_input_tokens for f in forward] == parse_length("uniform:50:400").draw(12, "5 input")
    assert all(f.input_tokens == f.intended_input_tokens for f in forward)
    outputs = [f.output_tokens for f in forward]
    assert outputs == parse_length("lognormal:64:0.5:max=200").draw(12, "5 output")
    assert len(set(outputs)) > 1
    assert 9 not in outputs
    body, _ = work.body(100, count=count, chat=False, max_tokens_default=9)  # past the first draw
    assert "ignore_eos" not in body
    assert count(body["prompt"]) == work.input_tokens(100)


def test_filler_requests_share_no_header() -> None:
    work = Workload("filler", parse_length("80"))
    first = work.body(0, count=count, chat=False, point="rate=2", max_tokens_default=8)[0]["prompt"]
    second = work.body(1, count=count, chat=False, point="rate=2", max_tokens_default=8)[0]["prompt"]
    assert first.startswith("Story 1, rate=2.\n\n")
    assert second.startswith("Story 2, rate=2.\n\n")


def _shared(prefix: int = 40, length: str = "uniform:100:300") -> Workload:
    plan = SharedPrefixPlan(groups=3, prefix_tokens=prefix, per_group=4, seed="e1")
    return Workload("shared-prefix", parse_length(length), shared=plan, seed=2, edition="e1")


def test_shared_prefix_chat_requests_carry_their_group_prompt() -> None:
    work = _shared()
    built = [work.body(i, count=count, chat=True, point="N=2", max_tokens_default=16) for i in range(9)]
    systems = [body["messages"][0] for body, _ in built]
    assert all(s["role"] == "system" for s in systems)
    for g in range(3):
        group = {systems[i]["content"].encode() for i in range(g, 9, 3)}
        assert len(group) == 1  # identical bytes across the group
    assert len({s["content"] for s in systems}) == 3
    for i, (body, facts) in enumerate(built):
        assert facts.group == i % 3
        assert count([body["messages"][0]]) == 40  # the prefix alone, as the server counts a system message
        assert count(body["messages"]) == facts.intended_input_tokens == facts.input_tokens
        assert body["messages"][1]["role"] == "user"
    users = {body["messages"][1]["content"] for body, _ in built}
    assert len(users) == 9


def test_shared_prefix_completions_start_with_the_same_bytes() -> None:
    work = _shared(prefix=30, length="200")
    prompts = [work.body(i, count=count, chat=False, max_tokens_default=16)[0]["prompt"] for i in range(6)]
    assert work.shared is not None
    for i in range(3):
        prefix = work.shared.prefix_text(i, count)
        assert count(prefix) == 30
        assert prompts[i].startswith(prefix + "\n\n")
        assert prompts[i + 3].startswith(prefix + "\n\n")
    assert all(count(p) == 200 for p in prompts)


def test_shared_prefix_length_must_be_above_the_prefix() -> None:
    work = _shared(prefix=64, length="64")
    with pytest.raises(PromptSizeError, match="input length 64 is not above the shared prefix of 64 tokens"):
        work.body(0, count=count, chat=True, max_tokens_default=8)


def test_shared_prefix_facts_give_the_expected_hit_rate() -> None:
    work = _shared(prefix=40)
    facts = work.facts()
    lengths = parse_length("uniform:100:300").draw(12, "2 input")
    assert facts["expected_prefix_hit_rate"] == pytest.approx(32 * 9 / sum(lengths))
    assert facts["shared"]["groups"] == 3
    assert facts["input_len"] == "uniform:100:300"
    assert Workload("filler", parse_length("10")).facts()["expected_prefix_hit_rate"] is None


def test_dataset_entries_in_turn(tmp_path: Path) -> None:
    path = tmp_path / "reqs.jsonl"
    path.write_text(
        json.dumps({"prompt": "Raw words here.", "output_tokens": 11})
        + "\n"
        + json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "Be kind."},
                    {"role": "user", "content": "Hello you"},
                ]
            }
        )
        + "\n"
    )
    data = load_dataset(path)
    work = Workload("dataset", parse_length("1"), parse_length("uniform:20:30"), dataset=data, seed=3)
    built = [work.body(i, count=count, chat=False, max_tokens_default=99) for i in range(4)]
    assert [b["prompt"] for b, _ in built] == [
        "Raw words here.",
        "system: Be kind.\nuser: Hello you",
        "Raw words here.",
        "system: Be kind.\nuser: Hello you",
    ]
    assert [f.entry for _, f in built] == [0, 1, 0, 1]
    assert [f.intended_input_tokens for _, f in built] == [None] * 4
    assert [f.input_tokens for _, f in built] == [3, 6, 3, 6]
    drawn = parse_length("uniform:20:30").draw(4, "3 output")
    assert [f.output_tokens for _, f in built] == [11, drawn[1], 11, drawn[3]]
    chat_body, chat_facts = work.body(1, count=count, chat=True, max_tokens_default=99)
    assert chat_body["messages"] == data.entries[1].messages
    assert chat_body["messages"] is not data.entries[1].messages  # the caller may change its copy
    assert chat_facts.input_tokens == count(data.entries[1].messages)
    facts = work.facts()
    assert facts["dataset"] == data.facts()
    assert facts["input_len"] is None
    assert facts["output_len"] == "uniform:20:30"


def test_dataset_without_output_lengths_takes_the_default(tmp_path: Path) -> None:
    data = load_dataset(write_sharegpt_sample(tmp_path / "s.json", 5, seed=1))
    work = Workload("dataset", parse_length("1"), dataset=data)
    body, facts = work.body(7, count=count, chat=True, max_tokens_default=77)
    assert body["max_tokens"] == facts.output_tokens == 77
    assert facts.entry == 2
    assert body["messages"][-1]["role"] == "user"


def test_workload_checks_its_parts(tmp_path: Path) -> None:
    data = load_dataset(write_sharegpt_sample(tmp_path / "s.json", 2))
    plan = SharedPrefixPlan(1, 16, 1)
    with pytest.raises(ValueError, match="'mixed' is not one of filler, dataset, shared-prefix"):
        Workload("mixed", parse_length("10"))
    with pytest.raises(ValueError, match="needs a dataset"):
        Workload("dataset", parse_length("10"))
    with pytest.raises(ValueError, match="needs a dataset"):
        Workload("filler", parse_length("10"), dataset=data)
    with pytest.raises(ValueError, match="needs a shared prefix plan"):
        Workload("shared-prefix", parse_length("10"))
    with pytest.raises(ValueError, match="needs a shared prefix plan"):
        Workload("filler", parse_length("10"), shared=plan)


def test_shared_prefix_token_runs_with_the_twins_tokenizer() -> None:
    """With a real byte-level tokenizer and chat template, a group's prompts share the cacheable blocks."""
    tok = Tokenizer()

    def ids(prompt: str | list[dict[str, str]]) -> list[int]:
        text = prompt if isinstance(prompt, str) else tok.apply_chat_template(prompt)
        return tok.encode(text, add_special_tokens=isinstance(prompt, str))

    def served(prompt: str | list[dict[str, str]]) -> int:
        return len(ids(prompt))

    def common(a: list[int], b: list[int]) -> int:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        return n

    cacheable = 144  # 150 rounded down to 16-token blocks
    for chat in (True, False):
        plan = SharedPrefixPlan(groups=2, prefix_tokens=150, per_group=3, seed="t")
        work = Workload("shared-prefix", parse_length("uniform:300:600"), shared=plan, seed=4)
        built = [work.body(i, count=served, chat=chat, max_tokens_default=8) for i in range(6)]
        runs = [ids(body["messages"] if chat else body["prompt"]) for body, _ in built]
        assert [len(r) for r in runs] == [f.intended_input_tokens for _, f in built]
        assert common(runs[0], runs[2]) >= cacheable
        assert common(runs[1], runs[5]) >= cacheable
        assert common(runs[0], runs[1]) < 16  # different groups share less than one block
