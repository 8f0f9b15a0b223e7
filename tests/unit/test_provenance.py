"""Provenance: gathering the deployment's facts from each source, merging them, redacting command
lines, the client block, the baseline's facts (old files too) and the facts table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.launch import load_recipe
from pytest_gx10.launch.docker import DockerLauncher, _Node
from pytest_gx10.profiles import load_profile
from pytest_gx10.report.baseline import Tolerances, compare, load_baseline, save_baseline
from pytest_gx10.report.provenance import (
    argv_facts,
    client_facts,
    deployment_line,
    facts_of,
    log_facts,
    merge,
    profile_facts,
    recipe_facts,
    redact_argv,
    values,
)
from pytest_gx10.report.tables import facts_table
from pytest_gx10.servers import VllmServer

SECRET = "sk-live-0123456789abcdef"


@pytest.mark.parametrize(
    "argv",
    [
        ["vllm", "serve", "m", f"--api-key={SECRET}"],
        ["vllm", "serve", "m", "--api-key", SECRET],
        ["vllm", "serve", "m", "--hf-token", SECRET, "--port", "8000"],
        ["env", f"HF_TOKEN={SECRET}", "vllm", "serve", "m"],
    ],
)
def test_a_secret_flag_never_reaches_the_serve_command(argv: list[str]) -> None:
    """The value of a flag named like a secret is masked, whichever way it is written."""
    facts = argv_facts(argv)
    assert SECRET not in json.dumps(facts)
    assert SECRET not in " ".join(redact_argv(argv))
    assert "[REDACTED]" in facts["serve_command"]


def test_serve_command_facts_and_what_is_kept() -> None:
    """Flags that are facts are read; counts named *_tokens stay; host and port (the endpoint) go."""
    argv = [
        "vllm", "serve", "/models/q", "--host", "0.0.0.0", "--port=8123", "-tp", "4",
        "--max-num-batched-tokens", "8192", "--gpu-memory-utilization", "0.9", "--ssl-keyfile", "/k.pem",
        "--speculative-config", '{"method":"mtp","num_speculative_tokens":2}',
    ]  # fmt: skip
    facts = argv_facts(argv)
    assert facts["tensor_parallel_size"] == 4
    assert facts["max_num_batched_tokens"] == 8192
    assert facts["gpu_memory_utilization"] == 0.9
    assert facts["speculative"] == "mtp k=2"
    assert facts["serve_command"].startswith("vllm serve /models/q -tp 4 --max-num-batched-tokens 8192")
    assert "--ssl-keyfile /k.pem" in facts["serve_command"]
    assert "0.0.0.0" not in facts["serve_command"]
    assert "8123" not in facts["serve_command"]


def test_the_most_direct_source_wins_in_either_order() -> None:
    """Server beats recipe beats profile, whatever arrives first; the twin ranks as a server; an
    unknown is absent, never a "None"."""
    profile = facts_of("profile", {"max_model_len": 8192, "gpu": "NVIDIA GB10", "driver": None})
    recipe = facts_of("recipe", {"max_model_len": 4096, "image": "img:1"})
    server = facts_of("server", {"max_model_len": 2048})
    one = merge(merge(merge({}, profile), recipe), server)
    other = merge(merge(merge({}, server), recipe), profile)
    assert one == other
    assert one["max_model_len"] == {"value": 2048, "source": "server"}
    assert one["image"] == {"value": "img:1", "source": "recipe"}
    assert one["gpu"] == {"value": "NVIDIA GB10", "source": "profile"}
    assert "driver" not in one
    twin = merge(recipe, facts_of("twin", {"max_model_len": 1}))
    assert twin["max_model_len"] == {"value": 1, "source": "twin"}
    assert list(one) == ["gpu", "image", "max_model_len"]  # the report's order, not arrival's


def test_bundled_reference_profile_declares_the_posts_hardware() -> None:
    """The reference profile says what the post says: 4 x GB10, CUDA 13, torch 2.11.0+cu130, no driver."""
    facts = profile_facts(load_profile("qwen3.5-397b-fp8-mtp2-gx10x4"))
    assert facts["gpu"] == "NVIDIA GB10"
    assert facts["gpu_count"] == 4
    assert facts["torch"] == "2.11.0+cu130"
    assert str(facts["cuda"]).startswith("13")
    assert facts["driver"] is None  # the post prints none: none is claimed
    block = facts_of("profile", facts)
    assert "driver" not in block
    assert deployment_line(block) == (
        "4 x NVIDIA GB10, CUDA 13.2, image vllm-node-mimo:latest, TP=4 [profile]"
    )
    cpu = facts_of("profile", profile_facts(load_profile("smollm2-cpu")))
    assert "gpu" not in cpu
    assert deployment_line(cpu) is None


def test_boot_log_facts_mask_secrets_and_drop_the_address() -> None:
    """The engine config line and the non-default args a vLLM log holds; the last boot counts."""
    text = "\n".join(
        [
            "(APIServer pid=1) INFO 06-13 10:00:00 [api_utils.py:286] non-default args: "
            f"{{'host': '0.0.0.0', 'port': 8000, 'api_key': ['{SECRET}'], 'max_num_seqs': 8}}",
            "(EngineCore pid=2) INFO 06-13 10:00:01 [core.py:93] Initializing a V1 LLM engine (v0.31.0) "
            "with config: model='m', speculative_config=None, tensor_parallel_size=1, seed=0",
            "(APIServer pid=1) INFO 06-13 11:00:00 [api_utils.py:286] non-default args: "
            "{'host': '0.0.0.0', 'port': 8000, 'max_num_seqs': 16}",
            "(EngineCore pid=3) INFO 06-13 11:00:01 [core.py:93] Initializing a V1 LLM engine (v0.32.0) "
            "with config: model='m', speculative_config=SpeculativeConfig(method='mtp', model='m', "
            "num_spec_tokens=2), tensor_parallel_size=4, seed=0",
        ]
    )
    facts = log_facts(text)
    assert facts == {
        "server_version": "0.32.0",
        "tensor_parallel_size": 4,
        "speculative": "mtp k=2",
        "serve_args": {"max_num_seqs": 16},
    }
    first = log_facts(text.split("\n")[0])
    assert first["serve_args"] == {"api_key": "[REDACTED]", "max_num_seqs": 8}


def test_vllm_cache_config_info_gauge() -> None:
    """vllm:cache_config_info's labels become facts; a "None" label is no fact."""
    text = (
        "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
        "# TYPE vllm:cache_config_info gauge\n"
        'vllm:cache_config_info{block_size="16",cache_dtype="fp8",enable_prefix_caching="True",'
        'gpu_memory_utilization="0.9",num_cpu_blocks="None",num_gpu_blocks="4613"} 1.0\n'
    )
    server = VllmServer.__new__(VllmServer)
    facts = server.metric_facts(text)
    assert facts == {
        "gpu_memory_utilization": 0.9,
        "block_size": 16,
        "num_gpu_blocks": 4613,
        "kv_cache_dtype": "fp8",
        "enable_prefix_caching": True,
    }
    assert server.metric_facts("vllm:num_requests_running 0.0\n") == {}


class _Image:
    def __init__(self, image_id: str, digests: list[str]) -> None:
        self.id = image_id
        self.attrs = {"RepoDigests": digests}


class _Images:
    def __init__(self, image: _Image) -> None:
        self.image = image

    def get(self, name: str) -> _Image:
        return self.image


class _Containers:
    def list(self, **kwargs: Any) -> list[Any]:
        return []


class _Engine:
    """The part of a docker SDK client the launcher's readiness check asks: images and containers."""

    def __init__(self, image: _Image) -> None:
        self.images = _Images(image)
        self.containers = _Containers()


def test_docker_launcher_facts_from_the_engines() -> None:
    """The image's id and digests as each node's engine holds it; a worker with another build says so;
    the serve command is redacted."""
    recipe = load_recipe("qwen3.5-397b-fp8-mtp2-gx10x4")
    launcher = DockerLauncher(recipe, run_id="r")
    head = _Image("sha256:aaa", ["registry/vllm-node-mimo@sha256:d1"])
    stale = _Image("sha256:bbb", [])
    engines = [_Engine(head), _Engine(head), _Engine(head), _Engine(stale)]
    launcher._nodes = [
        _Node(spec, launcher._name(i, spec), engines[i]) for i, spec in enumerate(recipe.nodes)
    ]
    for node in launcher._nodes:
        launcher._check_ready(node)
    launcher.serve_argv = [*recipe.serve_argv(8000, {}), "--api-key", SECRET]
    facts = recipe_facts(launcher.facts())
    assert facts["launch"] == "docker recipe qwen3.5-397b-fp8-mtp2-gx10x4"
    assert facts["nodes"] == 4
    assert facts["ray"] is True
    assert facts["image"] == "vllm-node-mimo:latest"
    assert facts["image_id"] == "sha256:aaa"
    assert facts["image_digests"] == ["registry/vllm-node-mimo@sha256:d1"]
    assert sorted(facts["image_ids"].values()) == ["sha256:aaa"] * 3 + ["sha256:bbb"]
    assert facts["tensor_parallel_size"] == 4
    assert facts["speculative"] == "qwen3_next_mtp k=2"
    assert SECRET not in json.dumps(facts)


def test_client_facts() -> None:
    """The client's machine: Python, CPU count, the plugin's version; no None values."""
    facts = client_facts()
    assert facts["cpu_count"] >= 1
    assert facts["pytest_gx10"]
    assert None not in facts.values()


def _doc(deployment: dict[str, Any], client: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "model": "m",
        "profile": "p",
        "server_version": "1.0",
        "sweep": [{"concurrency": 1, "agg_decode_tps": 40.0}],
        "deployment": deployment,
        "client": client or client_facts(),
    }


BASE = {
    **facts_of("profile", {"gpu": "NVIDIA GB10", "gpu_count": 4}),
    **facts_of("recipe", {"image_id": "sha256:aaa", "serve_command": "vllm serve m -tp 4"}),
}


def test_gate_notes_deployment_and_client_differences(tmp_path: Path) -> None:
    """Another GPU or command line is noted (a regression only with strict facts); another image is
    a new build, always only noted; another client machine is noted as the client's."""
    path = tmp_path / "b.json"
    save_baseline(path, _doc(BASE), None)
    base = load_baseline(path)
    assert values(base.deployment)["gpu"] == "NVIDIA GB10"
    now = merge(
        BASE,
        facts_of("recipe", {"image_id": "sha256:bbb", "serve_command": "vllm serve m -tp 2"}),
    )
    now = merge(now, facts_of("profile", {"gpu": "NVIDIA H100"}))
    client = {**client_facts(), "cpu_model": "Another CPU"}
    gate = compare(base, _doc(now, client), tolerances=Tolerances())
    assert gate.passed
    assert (
        "deployment GPU differs: baseline NVIDIA GB10 [profile], this run NVIDIA H100 [profile]" in gate.notes
    )
    assert any(
        n.startswith("deployment Serve command differs: baseline vllm serve m -tp 4") for n in gate.notes
    )
    assert any(n.startswith("deployment Image id differs: baseline sha256:aaa") for n in gate.notes)
    assert any(n.startswith("client cpu_model differs: baseline ") for n in gate.notes)
    strict = compare(base, _doc(now, client), tolerances=Tolerances(), strict_facts=True)
    assert sorted(r.split(" differs")[0] for r in strict.regressions) == [
        "client cpu_model",
        "deployment GPU",
        "deployment Serve command",
    ]
    assert any(n.startswith("deployment Image id differs") for n in strict.notes)
    same = compare(base, _doc(BASE), tolerances=Tolerances(), strict_facts=True)
    assert same.passed
    assert not [n for n in same.notes if "differs" in n]


def test_old_baseline_with_a_hardware_block_still_loads(tmp_path: Path) -> None:
    """A file written before deployments were recorded: its "hardware" is the client; no deployment."""
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            {
                "format": "pytest-gx10-baseline",
                "version": 1,
                "created_at": "2026-06-13T15:02:11+00:00",
                "software": {"server_version": "1.0", "model": "m"},
                "hardware": {"machine": "aarch64", "cpu_count": 20, "python": "3.12.3"},
                "figures": {"sweep[N=1].agg_decode_tps": 40.0},
            }
        )
    )
    base = load_baseline(path)
    assert base.client["machine"] == "aarch64"
    assert base.deployment == {}
    gate = compare(base, _doc(BASE), tolerances=Tolerances())
    assert gate.passed
    assert any(n.startswith("client machine differs: baseline aarch64") for n in gate.notes)
    assert not [n for n in gate.notes if n.startswith("deployment")]  # nothing to compare with


def test_facts_table_deployment_first_client_last_each_once() -> None:
    """GPU and server build lead with their sources; the model and server version, also run facts,
    appear once; the client's rows close the table."""
    meta = {
        "target_label": "attach",
        "model": "m",
        "server_label": "vLLM",
        "server_version": "0.32.0",
        "profile": "p",
        "deployment": merge(
            facts_of("profile", {"gpu": "NVIDIA GB10", "gpu_count": 4, "model": "m"}),
            facts_of("server", {"server": "vLLM", "server_version": "0.32.0", "model": "m"}),
        ),
        "client": {"python": "3.11.7", "cpu_count": 2},
    }
    rows = facts_table(meta).rows
    labels = [label for label, _ in rows]
    assert labels[:2] == ["GPU", "GPU count"]
    assert rows[0] == ["GPU", "NVIDIA GB10 [profile]"]
    assert ["Server build", "0.32.0 [server]"] in rows
    assert ["Model", "m [server]"] in rows
    assert labels.count("Model") == 1
    assert "Server version" not in labels
    assert labels.count("Server") == 1
    assert labels[-2:] == ["Client CPUs", "Client Python"]
    assert labels.index("Target") < labels.index("Client CPUs")
