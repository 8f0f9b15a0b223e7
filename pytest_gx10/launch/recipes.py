"""Launch recipes: how to start a deployment (containers or a local process) and what to expect of it.

A recipe is a TOML file. Each table is a dataclass below and each of its fields declares one key
(see :mod:`pytest_gx10.config`), as for profiles, so a typo stops the run with an error naming the
file and the key, and several mistakes are named together. The ``[serve]`` table renders into the
server's command line (``vllm serve MODEL --max-model-len ... --speculative-config '{...}'``): the
usual vLLM flags are typed keys, anything else goes in ``[serve.args]`` or ``extra_args``.

Strings may use ``${VAR}`` and ``${VAR:-default}`` (expanded from the environment when the command
is built) and ``{port}`` (the server's port; ``port = 0`` picks a free loopback port at launch).
This module is core: it imports nothing from pytest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pytest_gx10 import bundled_dir
from pytest_gx10.config import ConfigError, Invalid, Problem, build_table, convert, key, read_table
from pytest_gx10.servers import UnknownServer, adapter_class
from pytest_gx10.tomlfile import read_toml

__all__ = [
    "BUNDLED_RECIPES_DIR",
    "RECIPE_TABLES",
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
    "recipe_from_data",
]

# The recipes that ship with the package (pytest_gx10.recipes; recipes/ at the top of a clone).
BUNDLED_RECIPES_DIR = bundled_dir("recipes") or Path(__file__).resolve().parents[2] / "recipes"


class RecipeError(ConfigError):
    """A recipe that cannot be used: names the file, each key and the problem."""

    what = "recipe"


_SCALAR: tuple[type, ...] = (str, int, float, bool)
KINDS = ("docker", "process")


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _environment(value: Any) -> Mapping[str, str]:
    """An ``environment`` table: strings, numbers and booleans, passed on as strings."""
    if not isinstance(value, dict):
        raise Invalid(f"expected a table, got {type(value).__name__} {value!r}")
    bad = [
        (f".{k}", f"expected string, number or boolean, got {type(v).__name__} {v!r}")
        for k, v in value.items()
        if not isinstance(v, _SCALAR)
    ]
    if bad:
        raise Invalid(problems=bad)
    return {k: _env_value(v) for k, v in value.items()}


def _serve_args(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"expected a table, got {type(value).__name__} {value!r}")
    problems: list[Problem] = []
    for name, arg in value.items():
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9_\-.]+)?", name):
            problems.append((f".{name}", "not a flag name (write it without dashes)"))
        elif not isinstance(arg, (*_SCALAR, dict, list)):
            problems.append((f".{name}", f"unsupported value {arg!r}"))
    if problems:
        raise Invalid(problems=problems)
    return dict(value)


@dataclass(frozen=True)
class RecipeMeta:
    """The ``[recipe]`` table: what the recipe starts and how long it may take."""

    kind: str = key(choices=KINDS, help="how the deployment is started")
    name: str | None = key(None, help="default: the file's name")
    description: str = ""
    profile: str | None = key(None, help="the profile the deployment is tested against (name or path)")
    boot_budget_s: float = key(600.0, gt=0, help="seconds the deployment may take to answer")
    health_path: str = "/health"
    url: str | None = key(None, help="the server's URL when it is not http://HEAD:PORT")
    server: str = key(
        "vllm",
        nonempty=True,
        help="the engine started: its adapter writes the command line (vllm, llama.cpp)",
    )


@dataclass(frozen=True)
class ServeTable:
    """The ``[serve]`` table: entrypoint, model, the usual vLLM flags as typed keys, then the rest.

    The flags' order in the file is their order on the command line.
    """

    UNKNOWN_HINT: ClassVar[str] = " (other vLLM flags go in [serve.args] or serve.extra_args)"

    entrypoint: tuple[str, ...] = key(
        (), help="the command before the model (default: the engine's own: vllm serve, llama-server)"
    )
    model: str | None = None
    extra_args: tuple[str, ...] = key((), help="arguments added after the flags, as written")
    args: Mapping[str, Any] = key(factory=dict, parse=_serve_args, help="any other flag, without dashes")
    served_model_name: str | None = None
    host: str | None = None
    port: int = key(8000, ge=0, lt=65536, expect="expected a port 0-65535 (0 picks a free one)")
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    load_format: str | None = None
    dtype: str | None = None
    enable_prefix_caching: bool | None = None
    enable_auto_tool_choice: bool | None = None
    tool_call_parser: str | None = None
    reasoning_parser: str | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    trust_remote_code: bool | None = None
    enforce_eager: bool | None = None
    tensor_parallel_size: int | None = None
    pipeline_parallel_size: int | None = None
    distributed_executor_backend: str | None = None
    mm_encoder_tp_mode: str | None = None
    kv_cache_dtype: str | None = None
    compilation_config: Mapping[str, Any] | None = None
    attention_backend: str | None = None
    speculative_config: Mapping[str, Any] | None = None


_NOT_FLAGS = frozenset({"entrypoint", "model", "extra_args", "args"})


@dataclass(frozen=True)
class ServeSpec:
    """The server's command line: entrypoint, model, then flags in the file's order."""

    entrypoint: tuple[str, ...] = ()  # empty: the engine adapter's default_entrypoint
    model: str | None = None
    port: int = 8000
    host: str | None = None
    flags: tuple[tuple[str, Any], ...] = ()  # (flag without dashes, value) in order
    extra_args: tuple[str, ...] = ()


def _docker_url(url: str) -> str | None:
    if url and not re.match(r"^(unix|ssh|tcp|http|https)://.+", url):
        return f"not a docker URL (unix:///path or ssh://user@host): {url!r}"
    return None


@dataclass(frozen=True)
class NodeSpec:
    """One machine of the deployment: a docker engine and the address other nodes reach it by."""

    role: str = key("head", choices=("head", "worker"), help="the first node is the head, the rest workers")
    docker_url: str | None = key(
        None, check=_docker_url, help="default: the local engine as DOCKER_HOST says; else unix:// or ssh://"
    )
    address: str = "127.0.0.1"
    name: str | None = key(None, help="container name; default: container_name, or container_name-worker-N")


def _container_name(name: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", name):
        return f"not a container name: {name!r}"
    return None


def _volumes(value: Any) -> tuple[str, ...]:
    problems: list[Problem] = []
    converted = convert(tuple[str, ...], value, "", problems)
    volumes: tuple[str, ...] = converted if isinstance(converted, tuple) else ()
    for i, volume in enumerate(volumes):
        if expand(volume).count(":") not in (1, 2):
            problems.append((f"[{i}]", f"expected HOST:CONTAINER[:MODE], got {volume!r}"))
    if problems:
        raise Invalid(problems=problems)
    return volumes


@dataclass(frozen=True)
class DockerSpec:
    """``docker run`` options shared by every node's container."""

    image: str
    container_name: str = key(check=_container_name)
    runtime: str | None = None
    network: str = "host"
    ipc: str | None = None
    shm_size: str | None = None
    init: bool = key(True, help="a shell or Ray as PID 1 ignores SIGTERM; docker's init forwards it")
    stop_timeout_s: int = 10
    environment: Mapping[str, str] = key(factory=dict, parse=_environment)
    volumes: tuple[str, ...] = key((), parse=_volumes, help="HOST:CONTAINER[:MODE] mounts")


@dataclass(frozen=True)
class RaySpec:
    """A Ray cluster across the nodes: head first, then workers, then the server on the head."""

    port: int = 6379
    head_args: tuple[str, ...] = ()
    worker_args: tuple[str, ...] = ()
    python: str = key("python3", help="the image's interpreter that can import ray")


@dataclass(frozen=True)
class ProcessSpec:
    """A local process: environment added to ours, working directory."""

    environment: Mapping[str, str] = key(factory=dict, parse=_environment)
    cwd: str | None = None
    stop_timeout_s: float = 15.0


def _expectation(value: str) -> str | None:
    if value.startswith(">=") and not re.fullmatch(r">=\s*\d+(\.\d+)*\S*", value):
        return f"expected >=VERSION, got {value!r}"
    return None


@dataclass(frozen=True)
class ImageExpect:
    """The ``[image.expect]`` table: the packages an image is checked for."""

    torch: str | None = key(None, check=_expectation)
    torch_cuda: str | None = key(None, check=_expectation)
    vllm: str | None = key(None, check=_expectation)
    transformers: str | None = key(None, check=_expectation)
    flashinfer: str | None = key(None, check=_expectation)


def _expect(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise Invalid(f"expected a table, got {type(value).__name__} {value!r}")
    problems: list[Problem] = []
    read = read_table(ImageExpect, value, ".", problems)
    if read is None:
        raise Invalid(problems=problems)
    return read


@dataclass(frozen=True)
class ImageSpec:
    """What the image must hold (checked by suites/image): package -> expectation.

    An expectation is ``absent``, an exact version (``2.11.0+cu130``), a floor (``>=5.0``) or a
    prefix (``0.22.1rc1.dev124+gace95c9cf*``).
    """

    python: str = "python3"
    expect: Mapping[str, str] = key(factory=dict, parse=_expect)


def _matrix_tables(value: Any) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise Invalid("expected an array of tables: [[matrix]] entries of dotted keys and values")
    return tuple(value)


def _nodes(value: Any) -> tuple[NodeSpec, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(n, dict) for n in value):
        raise Invalid("expected [[nodes]] tables, the head first")
    problems: list[Problem] = []
    nodes: list[NodeSpec] = []
    for i, raw in enumerate(value):
        read = read_table(NodeSpec, raw, f"nodes[{i}].", problems)
        if read is None:
            continue
        role = read.setdefault("role", "head" if i == 0 else "worker")
        if (role == "head") != (i == 0):
            problems.append((f"nodes[{i}].role", "the first node is the head and only the first"))
        read["docker_url"] = read.get("docker_url") or None
        nodes.append(NodeSpec(**read))
    if problems:
        raise Invalid(problems=[(at[len("nodes") :], text) for at, text in problems])
    return tuple(nodes)


@dataclass(frozen=True)
class _RecipeFile:
    """The tables of a recipe file."""

    recipe: RecipeMeta
    serve: ServeTable = field(default_factory=ServeTable)
    docker: DockerSpec | None = None
    process: ProcessSpec = field(default_factory=ProcessSpec)
    nodes: tuple[NodeSpec, ...] = key((NodeSpec(),), parse=_nodes, help="[[nodes]]: the head first")
    ray: RaySpec | None = None
    image: ImageSpec | None = None
    matrix: tuple[Mapping[str, Any], ...] = key(
        (), parse=_matrix_tables, help="[[matrix]]: named cells, each dotted keys to values (--gx10-matrix)"
    )


# The recipe's tables: a matrix path (--gx10-matrix) whose first key is one of them sets the recipe.
RECIPE_TABLES = ("recipe", "serve", "docker", "process", "nodes", "ray", "image")


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
    server: str = "vllm"  # the engine's adapter name (pytest_gx10.servers)
    matrix: tuple[Mapping[str, Any], ...] = ()  # the [[matrix]] cells, as written

    def serve_argv(self, port: int | None = None, env: Mapping[str, str] | None = None) -> list[str]:
        """The server's command line, ``{port}`` and ``${VAR}`` filled in, written as its engine reads it."""
        engine = adapter_class(self.server)
        port = self.serve.port if port is None else port
        argv = list(self.serve.entrypoint or engine.default_entrypoint)
        if self.serve.model is not None:
            argv += engine.model_argv(self.serve.model)
        for flag, value in self.serve.flags:
            argv += engine.render_flag(flag, port if flag == "port" else value)
        argv += self.serve.extra_args
        return [self._fill(part, port, env) for part in argv]

    def _fill(self, text: str, port: int, env: Mapping[str, str] | None) -> str:
        return expand(text, env).replace("{port}", str(port))

    @property
    def head(self) -> NodeSpec:
        """The node that serves the API (and heads the Ray cluster)."""
        return self.nodes[0]


_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand(text: str, env: Mapping[str, str] | None = None) -> str:
    """``${VAR}`` / ``${VAR:-default}`` from ``env`` (default: the process environment); ``~`` first."""
    values = os.environ if env is None else env

    def sub(m: re.Match[str]) -> str:
        value = str(values.get(m.group("name"), ""))
        return value if value else (m.group("default") or "")

    out = _VAR.sub(sub, text)
    return os.path.expanduser(out) if out.startswith("~") else out


# --- reading ---------------------------------------------------------------------------------------


def _build(path: Path, data: Mapping[str, Any]) -> Recipe:
    problems: list[Problem] = []
    readable = data
    kind = _kind(data)
    if kind is not None and kind != "docker":
        extra = next((k for k in ("docker", "nodes", "ray") if data.get(k)), None)
        if extra is not None:
            problems.append((extra, 'only a recipe of kind "docker" has containers, nodes or Ray'))
            readable = {k: v for k, v in data.items() if k not in ("docker", "nodes", "ray")}
    elif kind == "docker" and "docker" not in data:
        build_table(DockerSpec, {}, "docker.", problems)  # names the keys a docker recipe needs
    tables = build_table(_RecipeFile, readable, "", problems)
    if tables is not None:
        remote = any(n.docker_url and n.docker_url.startswith("ssh://") for n in tables.nodes)
        if tables.serve.port == 0 and remote:
            problems.append(("serve.port", "port 0 (a free local port) cannot be picked on a remote node"))
    if problems:
        raise RecipeError(path, problems=problems)
    assert isinstance(tables, _RecipeFile)
    meta, table = tables.recipe, tables.serve
    serve_raw = data.get("serve", {})
    # The typed flags as the file wrote them (an integer stays one on the command line), in its order.
    flags = tuple((k, v) for k, v in serve_raw.items() if k not in _NOT_FLAGS) + tuple(table.args.items())
    serve = ServeSpec(
        entrypoint=table.entrypoint,
        model=table.model,
        port=table.port,
        host=table.host,
        flags=flags,
        extra_args=table.extra_args,
    )
    ray = tables.ray
    if ray is None and len(tables.nodes) > 1:
        ray = RaySpec()
    try:
        adapter_class(meta.server)
    except UnknownServer as exc:
        raise RecipeError(path, "recipe.server", str(exc)) from None
    return Recipe(
        name=meta.name or path.stem,
        path=path,
        kind=meta.kind,
        description=meta.description,
        profile=_profile_ref(path, meta.profile),
        boot_budget_s=meta.boot_budget_s,
        health_path=meta.health_path,
        url=meta.url,
        serve=serve,
        docker=tables.docker if meta.kind == "docker" else None,
        nodes=tables.nodes,
        ray=ray,
        process=tables.process,
        image=tables.image,
        raw=data,
        server=meta.server,
        matrix=tables.matrix,
    )


def _kind(data: Mapping[str, Any]) -> str | None:
    # The kind as the file says it, when it says a known one: what the other tables must hold.
    meta = data.get("recipe")
    kind = meta.get("kind") if isinstance(meta, dict) else None
    return kind if kind in KINDS else None


def _profile_ref(path: Path, ref: str | None) -> str | None:
    # A relative path is relative to the recipe; a bare name is a bundled profile.
    if ref is None or not (ref.endswith(".toml") or "/" in ref):
        return ref
    candidate = Path(ref).expanduser()
    return str(candidate if candidate.is_absolute() else (path.parent / candidate).resolve())


def recipe_from_data(path: Path, data: Mapping[str, Any]) -> Recipe:
    """A recipe from TOML-shaped data (a matrix cell's), checked as a file is; ``path`` names it in
    errors and is where relative paths in it are resolved from."""
    return _build(path, data)


def load_recipe(path: str | Path) -> Recipe:
    """Load a recipe by path (or a bundled one by name); raise :class:`RecipeError` if missing or
    malformed."""
    text = str(path)
    candidate = Path(text).expanduser()
    if not candidate.exists() and "/" not in text and not text.endswith(".toml"):
        bundled = BUNDLED_RECIPES_DIR / f"{text}.toml"
        if bundled.exists():
            candidate = bundled
    data = read_toml(candidate, RecipeError)
    return _build(candidate.resolve(), data)
