"""Shared prefixes: exact-size group prompts with identical bytes, the round robin, the hit-rate formula."""

from __future__ import annotations

import threading

import pytest

from pytest_gx10.workload.shared import SharedPrefixPlan, cacheable_tokens


def words(text: str) -> int:
    """A stand-in tokenizer: one token per whitespace-separated word."""
    return len(text.split())


@pytest.mark.parametrize("prefix_tokens", [20, 64, 333])
def test_prefixes_are_exact_and_the_same_bytes_each_time(prefix_tokens: int) -> None:
    plan = SharedPrefixPlan(groups=3, prefix_tokens=prefix_tokens, per_group=4, seed="run-1")
    texts = [plan.prefix_text(g, words) for g in range(3)]
    assert [words(t) for t in texts] == [prefix_tokens] * 3
    assert len(set(texts)) == 3  # each group its own prompt
    for g, text in enumerate(texts):
        again = plan.prefix_text(g, words)
        assert again == text
        assert again.encode() == text.encode()


def test_prefixes_do_not_depend_on_build_order_and_follow_the_seed() -> None:
    one = SharedPrefixPlan(4, 50, 2, seed=9)
    two = SharedPrefixPlan(4, 50, 2, seed=9)
    forward = [one.prefix_text(g, words) for g in range(4)]
    backward = [two.prefix_text(g, words) for g in reversed(range(4))][::-1]
    assert forward == backward
    other = SharedPrefixPlan(4, 50, 2, seed=10)
    assert all(other.prefix_text(g, words) != forward[g] for g in range(4))


def test_prefix_is_built_once_per_group_under_threads() -> None:
    calls: list[str] = []

    def counting(text: str) -> int:
        calls.append(text)
        return words(text)

    plan = SharedPrefixPlan(1, 80, 8)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(plan.prefix_text(0, counting))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1
    assert len(results) == 8
    built = len(calls)
    plan.prefix_text(0, counting)
    assert len(calls) == built  # cached: no more counting


def test_round_robin_groups_and_size() -> None:
    plan = SharedPrefixPlan(groups=3, prefix_tokens=10, per_group=2)
    assert [plan.group_of(i) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    assert plan.requests == 6
    assert plan.as_dict() == {
        "groups": 3,
        "prefix_tokens": 10,
        "per_group": 2,
        "seed": 0,
        "assignment": "i % groups",
    }
    with pytest.raises(ValueError, match=r"group 3 is not one of 0\.\.2"):
        plan.prefix_text(3, words)


@pytest.mark.parametrize(("name", "value"), [("groups", 0), ("prefix_tokens", -1), ("per_group", 1.5)])
def test_plan_rejects_bad_sizes(name: str, value: object) -> None:
    sizes: dict[str, object] = {"groups": 2, "prefix_tokens": 32, "per_group": 2, name: value}
    with pytest.raises(ValueError, match=f"{name} must be a whole number"):
        SharedPrefixPlan(**sizes)  # type: ignore[arg-type]


def test_cacheable_prefix_is_whole_blocks() -> None:
    assert cacheable_tokens(100) == 96
    assert cacheable_tokens(15) == 0
    assert cacheable_tokens(32) == 32
    assert cacheable_tokens(100, block_size=1) == 100
    with pytest.raises(ValueError, match="block_size"):
        cacheable_tokens(100, block_size=0)


def test_hit_rate_formula_for_one_length() -> None:
    plan = SharedPrefixPlan(groups=4, prefix_tokens=100, per_group=5)
    # 20 requests of 400 tokens; 4 miss, 16 hit 96 tokens (six full blocks of 16).
    assert plan.expected_hit_rate(400) == pytest.approx(16 * 96 / (20 * 400))
    assert plan.expected_hit_rate(400) == pytest.approx((5 - 1) / 5 * 96 / 400)
    assert plan.expected_hit_rate(400, block_size=1) == pytest.approx(16 * 100 / 8000)
    assert plan.expected_hit_rate(400, block_size=128) == 0.0
    assert SharedPrefixPlan(4, 100, 1).expected_hit_rate(400) == 0.0  # every request is its group's first


def test_hit_rate_formula_for_drawn_lengths() -> None:
    plan = SharedPrefixPlan(groups=2, prefix_tokens=40, per_group=2)
    lengths = [100, 200, 300, 400]
    assert plan.expected_hit_rate(lengths) == pytest.approx(2 * 32 / 1000)
    assert plan.expected_hit_rate([100]) == 0.0
    assert plan.expected_hit_rate([]) == 0.0
