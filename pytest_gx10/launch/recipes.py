"""Launch recipes: how to start a deployment (containers or a local process) and what to expect of it.

A recipe is a TOML file. Every key is checked against the schema below, as profiles are, so a typo
stops the run with an error naming the file and the key. The ``[serve]`` table renders into the
server's command line (``vllm serve MODEL --max-model-len ... --speculative-config '{...}'``): the
usual vLLM flags are typed keys, anything else goes in ``[serve.args]`` or ``extra_args``.

Strings may use ``${VAR}`` and ``${VAR:-default}`` (expanded from the environment when the command
is built) and ``{port}`` (the server's port; ``port = 0`` picks a free loopback port at launch).
This module is core: it imports nothing from pytest.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_gx10 import bundled_dir
from pytest_gx10.tomlfile import NUMBER, check_schema, read_toml

__all__ = [
    "BUNDLED_RECIPES_DIR",
    "DockerSpec",
    "ImageSpec",
    "NodeSpec",
    "ProcessSpec",
    "RaySpec",
    "Recipe",
    "RecipeError",
    "ServeSpec",
    "expand",
    "load_recipe",
]

# The recipes that ship with the package (pytest_gx10.recipes; recipes/ at the top of a clone).
BUNDLED_RECIPES_DIR = bundled_dir("recipes") or Path(__file__).resolve().parents[2] / "recipes"


class RecipeError(ValueError):
    """A recipe that cannot be used: names the file, the key and the problem."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: key '{key}'" if key else self.path
        super().__init__(f"malformed recipe {where}: {problem}")


_NUMBER = NUMBER
_SCALAR: tuple[type, ...] = (str, int, float, bool)

# The typed vLLM flags of [serve]; their order in the file is the order on the command line.
_SERVE_FLAGS: dict[str, Any] = {
    "served_model_name": str,
    "host": str,
    "port": int,
    "max_model_len": int,
    "gpu_memory_utilization": _NUMBER,
    "load_format": str,
    "dtype": str,
    "enable_prefix_caching": bool,
    "enable_auto_tool_choice": bool,
    "tool_call_parser": str,
    "reasoning_parser": str,
    "max_num_batched_tokens": int,
    "max_num_seqs": int,
    "trust_remote_code": bool,
    "enforce_eager": bool,
    "tensor_parallel_size": int,
    "pipeline_parallel_size": int,
    "distributed_executor_backend": str,
    "mm_encoder_tp_mode": str,
    "kv_cache_dtype": str,
    "compilation_config": dict,
    "attention_backend": str,
    "speculative_config": dict,
}

_SCHEMA: dict[str, Any] = {
    "recipe": {
        "name": str,
        "description": str,
        "kind": str,
        "profile": str,
        "boot_budget_s": _NUMBER,
        "health_path": str,
        "url": str,
    },
    "serve": {"entrypoint": list, "model": str, "extra_args": list, "args": {"*": object}, **_SERVE_FLAGS},
    "docker": {
        "image": str,
        "container_name": str,
        "runtime": str,
        "network": str,
        "ipc": str,
        "shm_size": str,
        "init": bool,
        "stop_timeout_s": int,
        "environment": {"*": _SCALAR},
        "volumes": list,
    },
    "process": {"environment": {"*": _SCALAR}, "cwd": str, "stop_timeout_s": _NUMBER},
    "nodes": list,  # of tables, checked by _NODE
    "ray": {"port": int, "head_args": list, "worker_args": list, "python": str},
    "image": {
        "python": str,
        "expect": {"torch": str, "torch_cuda": str, "vllm": str, "transformers": str, "flashinfer": str},
    },
}
_NODE: dict[str, Any] = {"role": str, "docker_url": str, "address": str, "name": str}
_HINTS = {"serve": " (other vLLM flags go in [serve.args] or serve.extra_args)"}


@dataclass(frozen=True)
class ServeSpec:
    """The server's command line: entrypoint, model, then flags in the file's order."""

    entrypoint: tuple[str, ...] = ("vllm", "serve")
    model: str | None = None
    port: int = 8000
    host: str | None = None
    flags: tuple[tuple[str, Any], ...] = ()  # (flag without dashes, value) in order
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSpec:
    """One machine of the deployment: a docker engine and the address other nodes reach it by."""

    role: str  # "head" | "worker"
    docker_url: str | None = None  # None: the local engine as DOCKER_HOST says; else unix:// or ssh://
    address: str = "127.0.0.1"
    name: str | None = None  # container name; default: container_name, or container_name-worker-N


@dataclass(frozen=True)
class DockerSpec:
    """``docker run`` options shared by every node's container."""

    image: str
    container_name: str
    runtime: str | None = None
    network: str = "host"
    ipc: str | None = None
    shm_size: str | None = None
    init: bool = True  # a shell or Ray as PID 1 ignores SIGTERM; docker's init forwards it
    stop_timeout_s: int = 10
    environment: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RaySpec:
    """A Ray cluster across the nodes: head first, then workers, then the server on the head."""

    port: int = 6379
    head_args: tuple[str, ...] = ()
    worker_args: tuple[str, ...] = ()
    python: str = "python3"  # the image's interpreter that can import ray


@dataclass(frozen=True)
class ProcessSpec:
    """A local process: environment added to ours, working directory."""

    environment: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    stop_timeout_s: float = 15.0


@dataclass(frozen=True)
class ImageSpec:
    """What the image must hold (checked by suites/image): package -> expectation.

    An expectation is ``absent``, an exact version (``2.11.0+cu130``), a floor (``>=5.0``) or a
    prefix (``0.22.1rc1.dev124+gace95c9cf*``).
    """

    python: str = "python3"
    expect: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """A loaded, validated recipe."""

    name: str
    path: Path
    kind: str  # "docker" | "process"
    description: str
    profile: str | None
    boot_budget_s: float
    health_path: str
    url: str | None
    serve: ServeSpec
    docker: DockerSpec | None
    nodes: tuple[NodeSpec, ...]
    ray: RaySpec | None
    process: ProcessSpec
    image: ImageSpec | None
    raw: Mapping[str, Any]

    def serve_argv(self, port: int | None = None, env: Mapping[str, str] | None = None) -> list[str]:
        """The server's command line, ``{port}`` and ``${VAR}`` filled in."""
        port = self.serve.port if port is None else port
        argv = list(self.serve.entrypoint)
        if self.serve.model is not None:
            argv.append(self.serve.model)
        for flag, value in self.serve.flags:
            argv += _render_flag(flag, port if flag == "port" else value)
        argv += self.serve.extra_args
        return [self._fill(part, port, env) for part in argv]

    def _fill(self, text: str, port: int, env: Mapping[str, str] | None) -> str:
        return expand(text, env).replace("{port}", str(port))

    @property
    def head(self) -> NodeSpec:
        """The node that serves the API (and heads the Ray cluster)."""
        return self.nodes[0]


def _render_flag(flag: str, value: Any) -> list[str]:
    # vLLM normalizes underscores in the option name; after a dot comes a config field, kept as is.
    name, dot, sub = flag.partition(".")
    option = "--" + name.replace("_", "-") + dot + sub
    if isinstance(value, bool):
        return [option] if value else ["--no-" + option[2:]]
    if isinstance(value, dict):
        return [option, json.dumps(value, separators=(",", ":"))]
    if isinstance(value, list):
        return [option, *(str(v) for v in value)]
    return [option, str(value)]


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand(text: str, env: Mapping[str, str] | None = None) -> str:
    """``${VAR}`` / ``${VAR:-default}`` from ``env`` (default: the process environment); ``~`` first."""
    values = os.environ if env is None else env

    def sub(m: re.Match[str]) -> str:
        value = str(values.get(m.group("name"), ""))
        return value if value else (m.group("default") or "")

    out = _VAR.sub(sub, text)
    return os.path.expanduser(out) if out.startswith("~") else out


# --- schema ---------------------------------------------------------------------------------------


def _check(path: Path, data: Mapping[str, Any], schema: Mapping[str, Any], prefix: str) -> None:
    check_schema(path, data, schema, RecipeError, prefix=prefix, hints=_HINTS)


def _strings(path: Path, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not all(isinstance(v, str) for v in value):
        raise RecipeError(path, key, f"expected an array of strings, got {value!r}")
    return tuple(value)


def _build(path: Path, data: Mapping[str, Any]) -> Recipe:
    _check(path, data, _SCHEMA, "")
    meta = data.get("recipe", {})
    kind = meta.get("kind")
    if kind is None:
        raise RecipeError(path, "recipe.kind", 'required key is missing ("docker" or "process")')
    if kind not in ("docker", "process"):
        raise RecipeError(path, "recipe.kind", f'expected "docker" or "process", got {kind!r}')
    budget = meta.get("boot_budget_s", 600)
    if budget <= 0:
        raise RecipeError(
            path, "recipe.boot_budget_s", f"must be a positive number of seconds, got {budget!r}"
        )

    serve_raw = dict(data.get("serve", {}))
    entrypoint = _strings(path, "serve.entrypoint", serve_raw.pop("entrypoint", None)) or ("vllm", "serve")
    model = serve_raw.pop("model", None)
    extra = _strings(path, "serve.extra_args", serve_raw.pop("extra_args", None))
    args = serve_raw.pop("args", {})
    for key, value in args.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-.]+)?", key):
            raise RecipeError(path, f"serve.args.{key}", "not a flag name (write it without dashes)")
        if not isinstance(value, (*_SCALAR, dict, list)):
            raise RecipeError(path, f"serve.args.{key}", f"unsupported value {value!r}")
    port = serve_raw.get("port", 8000)
    if not 0 <= port < 65536:
        raise RecipeError(path, "serve.port", f"expected a port 0-65535 (0 picks a free one), got {port}")
    flags = tuple(serve_raw.items()) + tuple(args.items())
    serve = ServeSpec(
        entrypoint=entrypoint,
        model=model,
        port=port,
        host=serve_raw.get("host"),
        flags=flags,
        extra_args=extra,
    )

    nodes = _nodes(path, data.get("nodes"))
    docker = None
    if kind == "docker":
        raw = dict(data.get("docker", {}))
        for key in ("image", "container_name"):
            if key not in raw:
                raise RecipeError(path, f"docker.{key}", 'required key is missing (kind = "docker")')
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", raw["container_name"]):
            raise RecipeError(
                path, "docker.container_name", f"not a container name: {raw['container_name']!r}"
            )
        raw["environment"] = {k: _env_value(v) for k, v in raw.get("environment", {}).items()}
        raw["volumes"] = _strings(path, "docker.volumes", raw.get("volumes"))
        for i, volume in enumerate(raw["volumes"]):
            if expand(volume).count(":") not in (1, 2):
                raise RecipeError(
                    path, f"docker.volumes[{i}]", f"expected HOST:CONTAINER[:MODE], got {volume!r}"
                )
        docker = DockerSpec(**raw)
    elif data.get("docker") or data.get("nodes") or data.get("ray"):
        key = "docker" if data.get("docker") else "nodes" if data.get("nodes") else "ray"
        raise RecipeError(path, key, 'only a recipe of kind "docker" has containers, nodes or Ray')

    ray = None
    if "ray" in data or len(nodes) > 1:
        raw = dict(data.get("ray", {}))
        raw["head_args"] = _strings(path, "ray.head_args", raw.get("head_args"))
        raw["worker_args"] = _strings(path, "ray.worker_args", raw.get("worker_args"))
        ray = RaySpec(**raw)
    if port == 0 and any(n.docker_url and n.docker_url.startswith("ssh://") for n in nodes):
        raise RecipeError(path, "serve.port", "port 0 (a free local port) cannot be picked on a remote node")

    process_raw = dict(data.get("process", {}))
    process_raw["environment"] = {k: _env_value(v) for k, v in process_raw.get("environment", {}).items()}
    process = ProcessSpec(**process_raw)

    image = None
    if "image" in data:
        image_raw = dict(data["image"])
        expect = dict(image_raw.pop("expect", {}))
        for key, value in expect.items():
            if value.startswith(">=") and not re.fullmatch(r">=\s*\d+(\.\d+)*\S*", value):
                raise RecipeError(path, f"image.expect.{key}", f"expected >=VERSION, got {value!r}")
        image = ImageSpec(**image_raw, expect=expect)

    return Recipe(
        name=meta.get("name", path.stem),
        path=path,
        kind=kind,
        description=meta.get("description", ""),
        profile=_profile_ref(path, meta.get("profile")),
        boot_budget_s=float(budget),
        health_path=meta.get("health_path", "/health"),
        url=meta.get("url"),
        serve=serve,
        docker=docker,
        nodes=nodes,
        ray=ray,
        process=process,
        image=image,
        raw=data,
    )


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _profile_ref(path: Path, ref: str | None) -> str | None:
    # A relative path is relative to the recipe; a bare name is a bundled profile.
    if ref is None or not (ref.endswith(".toml") or "/" in ref):
        return ref
    candidate = Path(ref).expanduser()
    return str(candidate if candidate.is_absolute() else (path.parent / candidate).resolve())


def _nodes(path: Path, raw: Any) -> tuple[NodeSpec, ...]:
    if raw is None:
        return (NodeSpec(role="head"),)
    if not raw or not all(isinstance(n, dict) for n in raw):
        raise RecipeError(path, "nodes", "expected [[nodes]] tables, the head first")
    nodes = []
    for i, node in enumerate(raw):
        _check(path, node, _NODE, f"nodes[{i}].")
        role = node.get("role", "head" if i == 0 else "worker")
        if role not in ("head", "worker"):
            raise RecipeError(path, f"nodes[{i}].role", f'expected "head" or "worker", got {role!r}')
        if (role == "head") != (i == 0):
            raise RecipeError(path, f"nodes[{i}].role", "the first node is the head and only the first")
        url = node.get("docker_url") or None
        if url is not None and not re.match(r"^(unix|ssh|tcp|http|https)://.+", url):
            raise RecipeError(
                path, f"nodes[{i}].docker_url", f"not a docker URL (unix:///path or ssh://user@host): {url!r}"
            )
        nodes.append(
            NodeSpec(
                role=role, docker_url=url, address=node.get("address", "127.0.0.1"), name=node.get("name")
            )
        )
    return tuple(nodes)


def load_recipe(path: str | Path) -> Recipe:
    """Load a recipe by path (or a bundled one by name); raise :class:`RecipeError` if malformed."""
    text = str(path)
    candidate = Path(text).expanduser()
    if not candidate.exists() and "/" not in text and not text.endswith(".toml"):
        bundled = BUNDLED_RECIPES_DIR / f"{text}.toml"
        if bundled.exists():
            candidate = bundled
    data = read_toml(candidate, RecipeError)
    return _build(candidate.resolve(), data)
