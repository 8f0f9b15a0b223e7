"""Recipes: the bundled ones load, the reference recipe renders the post's command, typos are named."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from pytest_gx10.launch import RecipeError, load_recipe
from pytest_gx10.launch.recipes import expand

RECIPES = Path(__file__).resolve().parents[2] / "recipes"

# The benchmark post's expanded `docker run ... vllm serve` command, as printed there.
POST_SERVE = """vllm serve /root/.cache/huggingface/Qwen/Qwen3.5-397B-A17B-FP8 \
    --served-model-name Qwen3.5-397B-A17B-FP8 --host 0.0.0.0 --port 8000 --max-model-len 262144 \
    --gpu-memory-utilization 0.90 --load-format safetensors --enable-prefix-caching \
    --enable-auto-tool-choice --tool-call-parser qwen3_coder --reasoning-parser qwen3 \
    --max-num-batched-tokens 8192 --max-num-seqs 16 --trust-remote-code \
    -tp 4 --distributed-executor-backend ray --mm-encoder-tp-mode data --kv-cache-dtype fp8 \
    --compilation-config.cudagraph_mode none --attention-backend flashinfer \
    --speculative-config '{"method":"qwen3_next_mtp","num_speculative_tokens":2}'"""
POST_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    "VLLM_USE_DEEP_GEMM": "0",
    "VLLM_USE_FLASHINFER_MOE_FP16": "1",
    "VLLM_USE_FLASHINFER_SAMPLER": "0",
    "OMP_NUM_THREADS": "4",
}


def _options(argv: list[str]) -> dict[str, str | None]:
    """Flags to values, aliases spelt out, numbers and JSON normalized, so equal commands compare equal."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(argv):
        flag = {"-tp": "--tensor-parallel-size"}.get(argv[i], argv[i])
        value = argv[i + 1] if i + 1 < len(argv) and not argv[i + 1].startswith("-") else None
        if value is not None:
            try:
                value = repr(float(value))
            except ValueError:
                if value.startswith("{"):
                    value = json.dumps(json.loads(value), sort_keys=True)
        out[flag] = value
        i += 2 if value is not None else 1
    return out


def test_reference_recipe_renders_the_posts_command() -> None:
    """The reference recipe's server command is the post's: same model, flags, values and environment."""
    recipe = load_recipe(RECIPES / "qwen3.5-397b-fp8-mtp2-gx10x4.toml")
    post = shlex.split(POST_SERVE)
    ours = recipe.serve_argv()
    assert ours[:3] == post[:3]
    assert _options(ours[3:]) == _options(post[3:])
    assert recipe.docker is not None
    assert dict(recipe.docker.environment) == POST_ENV
    assert (recipe.docker.image, recipe.docker.container_name) == (
        "vllm-node-mimo:latest",
        "qwen397-fp8-mtp-tp4",
    )
    assert (recipe.docker.runtime, recipe.docker.network, recipe.docker.ipc, recipe.docker.shm_size) == (
        "nvidia",
        "host",
        "host",
        "16g",
    )
    assert [n.role for n in recipe.nodes] == ["head", "worker", "worker", "worker"]
    assert recipe.ray is not None
    assert recipe.profile == "qwen3.5-397b-fp8-mtp2-gx10x4"
    assert recipe.image is not None
    assert recipe.image.expect["torch"] == "2.11.0+cu130"


def test_every_bundled_recipe_loads() -> None:
    """Each recipe in recipes/ passes the schema and names a kind and a profile."""
    names = sorted(p.stem for p in RECIPES.glob("*.toml"))
    assert names == ["qwen3.5-397b-fp8-mtp2-gx10x4", "smollm2-cpu", "smollm2-llamacpp", "twin-docker"]
    for name in names:
        recipe = load_recipe(RECIPES / f"{name}.toml")
        assert recipe.kind in ("docker", "process")
        assert recipe.profile is not None


def test_cpu_recipe_uses_real_vllm_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CPU recipe runs scripts/real-vllm's venv and model under GX10_CACHE, on the port given."""
    monkeypatch.setenv("GX10_CACHE", "/c")
    argv = load_recipe(RECIPES / "smollm2-cpu.toml").serve_argv(8123)
    assert argv[:3] == ["/c/vllm-venv/bin/vllm", "serve", "/c/models/SmolLM2-135M-Instruct"]
    assert argv[argv.index("--port") + 1] == "8123"
    assert "--enforce-eager" in argv


def test_expand_defaults_and_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """${VAR:-default} falls back when VAR is unset or empty; ~ expands at the start."""
    monkeypatch.delenv("GX10_X", raising=False)
    assert expand("${GX10_X:-/d}/m") == "/d/m"
    monkeypatch.setenv("GX10_X", "/set")
    assert expand("${GX10_X:-/d}/m") == "/set/m"
    assert expand("~/a") == str(Path.home() / "a")


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    return path


BASE = '[recipe]\nkind = "docker"\n[docker]\nimage = "i"\ncontainer_name = "c"\n'


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        (
            BASE + "[serve]\nmax_model_length = 8\n",
            "serve.max_model_length",
            "did you mean 'serve.max_model_len'?",
        ),
        (BASE + "[serve]\nmax_model_len = 8\n[serve.args]\n'--x' = 1\n", "serve.args.--x", "not a flag name"),
        (BASE + "[serve]\nmax_model_len = '8k'\n", "serve.max_model_len", "expected integer, got str '8k'"),
        (BASE + "[serve]\nenforce_eager = 1\n", "serve.enforce_eager", "expected boolean, got int 1"),
        ('[recipe]\nkind = "k8s"\n', "recipe.kind", 'expected "docker" or "process"'),
        ("[recipe]\nname = 'x'\n", "recipe.kind", "required key is missing"),
        (
            '[recipe]\nkind = "docker"\n[docker]\nimage = "i"\n',
            "docker.container_name",
            "required key is missing",
        ),
        (BASE + "volumes = ['/only-one-part']\n", "docker.volumes[0]", "expected HOST:CONTAINER[:MODE]"),
        (BASE + "[[nodes]]\nrole = 'worker'\n", "nodes[0].role", "the first node is the head"),
        (BASE + "[[nodes]]\ndocker_url = 'head:2375'\n", "nodes[0].docker_url", "not a docker URL"),
        (BASE + "[[nodes]]\nadress = '10.0.0.1'\n", "nodes[0].adress", "did you mean 'nodes[0].address'?"),
        ('[recipe]\nkind = "process"\n[docker]\nimage = "i"\n', "docker", 'only a recipe of kind "docker"'),
        ('[recipe]\nkind = "process"\nboot_budget_s = 0\n', "recipe.boot_budget_s", "must be a positive"),
        ('[recipe]\nkind = "process"\n[image.expect]\ncuda = "13"\n', "image.expect.cuda", "unknown key"),
    ],
)
def test_schema_errors_name_file_and_key(tmp_path: Path, body: str, key: str, problem: str) -> None:
    """Each malformed recipe is refused with one line naming the file, the key and the problem."""
    path = _write(tmp_path, body)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith(f"malformed recipe {path.resolve()}: key '{key}': ")
    assert problem in message
    assert "\n" not in message


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    """A missing file is not found (not malformed); broken TOML is named too."""
    with pytest.raises(RecipeError, match=r"^recipe not found: .*nope\.toml$") as info:
        load_recipe(tmp_path / "nope.toml")
    assert info.value.missing
    with pytest.raises(RecipeError, match="not valid TOML"):
        load_recipe(_write(tmp_path, "[recipe\n"))


def test_launch_option_with_a_bad_recipe_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """--gx10-launch with a malformed recipe stops the run before any test, naming file and key."""
    bad = pytester.path / "bad.toml"
    bad.write_text(
        '[recipe]\nkind = "docker"\n[docker]\nimage = "i"\ncontainer_name = "c"\nshm_sise = "1g"\n'
    )
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(f"--gx10-launch={bad}")
    result.stderr.fnmatch_lines(
        ["*malformed recipe *bad.toml: key 'docker.shm_sise': unknown key*did you mean 'docker.shm_size'?*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_header_names_the_recipe_and_its_profile(pytester: pytest.Pytester) -> None:
    """The header says the target is launched from the recipe, and the profile came from it."""
    pytester.makepyfile("def test_nothing():\n    pass\n")
    recipe = RECIPES / "twin-docker.toml"
    result = pytester.runpytest(f"--gx10-launch={recipe}", "--gx10-keep")
    result.stdout.fnmatch_lines(
        [
            f"gx10 target: launched from recipe twin-docker ({recipe}) [[]--gx10-launch[]], kept running after the run",
            "gx10 profile: qwen3.5-397b-fp8-mtp2-gx10x4 [[]recipe twin-docker[]]",
        ]
    )
    result.assert_outcomes(passed=1)
