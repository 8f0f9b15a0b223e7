"""A recipe of kind ``docker``: the deployment as containers, through the docker SDK.

One node: the head container runs the server command itself. Several nodes (or a ``[ray]`` table):
the head container runs ``ray start --head --block``, each worker ``ray start --address=HEAD
--block``, the launcher waits until the head sees every node alive, and only then starts the server
on the head with ``docker exec``, its output sent to the container's own log (PID 1's stdout) so
``docker logs`` of the head is the run's log, as on the reference cluster.

Every container carries the labels ``gx10.recipe``, ``gx10.run`` and ``gx10.role``. A launch first
removes containers an earlier run of the same recipe left (a killed run, or ``--gx10-keep``), and a
stop removes ours in reverse order (workers, then the head) unless asked to keep them. Engines are
the local one (``DOCKER_HOST``) or any docker URL, ``ssh://user@host`` included.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_gx10.launch.boot import BootListener, BootProgress, RecipeLauncher, free_port, last_line
from pytest_gx10.launch.recipes import NodeSpec, Recipe, expand
from pytest_gx10.launch.target import LaunchError, Target

__all__ = ["LABEL_RECIPE", "LABEL_ROLE", "LABEL_RUN", "DockerLauncher", "docker_client", "ray_alive_nodes"]

LABEL_RECIPE = "gx10.recipe"
LABEL_RUN = "gx10.run"
LABEL_ROLE = "gx10.role"

# Prints the number of alive Ray nodes the head sees (run inside the head container).
_RAY_NODES = (
    "import ray, sys\n"
    "ray.init(address='auto', logging_level='ERROR', log_to_driver=False)\n"
    "print('GX10-RAY-NODES', sum(1 for n in ray.nodes() if n.get('Alive')))\n"
)


def docker_client(base_url: str | None = None) -> Any:
    """A docker SDK client of the local engine (``DOCKER_HOST``) or of ``base_url`` (``ssh://`` too)."""
    try:
        docker: Any = importlib.import_module("docker")
    except ImportError:
        raise LaunchError("the docker SDK is not installed (pip install docker)") from None
    where = base_url or "the local engine (DOCKER_HOST)"
    hint = "start one with scripts/dockerd start and export DOCKER_HOST"
    problem = _unix_socket_problem(base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock")
    if problem:
        raise LaunchError(f"cannot reach the docker engine at {where}: {problem}; {hint}")
    client = None
    try:
        if base_url is None:
            client = docker.from_env()
        else:
            client = docker.DockerClient(base_url=base_url, use_ssh_client=base_url.startswith("ssh://"))
        client.ping()
    except Exception as exc:  # the SDK raises its own and requests' errors
        if client is not None:
            client.close()
        raise LaunchError(
            f"cannot reach the docker engine at {where}: {type(exc).__name__}: {exc}; {hint}"
        ) from None
    return client


def _unix_socket_problem(url: str) -> str | None:
    # The SDK asks a unix socket for its API version while it builds a client, and a refused
    # connection leaves that client's socket open; asking first, with a socket we close, avoids it.
    if not url.startswith("unix://"):
        return None
    path = url[len("unix://") :]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        try:
            probe.connect(path)
        except OSError as exc:
            return f"{path}: {exc.strerror or exc}"
    return None


def ray_alive_nodes(container: Any, python: str = "python3") -> int:
    """How many alive nodes the Ray cluster of ``container`` (its head) has; -1 when it cannot say."""
    _, output = container.exec_run([python, "-c", _RAY_NODES], stdout=True, stderr=True)
    for line in bytes(output).decode("utf-8", "replace").splitlines():
        if line.startswith("GX10-RAY-NODES "):
            return int(line.split()[1])
    return -1


@dataclass
class _Node:
    spec: NodeSpec
    name: str
    client: Any
    container: Any = None


class DockerLauncher(RecipeLauncher):
    """Start, watch and stop the containers of a ``docker`` recipe."""

    def __init__(
        self,
        recipe: Recipe,
        *,
        run_id: str,
        keep: bool = False,
        before_serve: Callable[[DockerLauncher], None] | None = None,
    ) -> None:
        if recipe.kind != "docker" or recipe.docker is None:
            raise ValueError(f"recipe {recipe.name} is of kind {recipe.kind!r}, not 'docker'")
        self.recipe = recipe
        self.docker = recipe.docker
        self.run_id = run_id
        self.keep = keep
        self.before_serve = before_serve  # called once the Ray cluster is up, before the server starts
        self.url: str | None = None
        self.reaped: list[str] = []
        self.ray_nodes_before_serve: int | None = None
        self._nodes: list[_Node] = []
        self._serve_exec: str | None = None  # the exec id of the server on a Ray head
        self._images: dict[str, Any] = {}  # node name -> the image object its engine holds

    # --- names and options --------------------------------------------------------------------

    def _name(self, index: int, spec: NodeSpec) -> str:
        if spec.name:
            return spec.name
        return self.docker.container_name if index == 0 else f"{self.docker.container_name}-worker-{index}"

    def _labels(self, role: str) -> dict[str, str]:
        return {LABEL_RECIPE: self.recipe.name, LABEL_RUN: self.run_id, LABEL_ROLE: role}

    def _run_options(self, node: _Node, command: list[str], environment: dict[str, str]) -> dict[str, Any]:
        d = self.docker
        options: dict[str, Any] = {
            "command": command,
            "name": node.name,
            "detach": True,
            "labels": self._labels(node.spec.role),
            "environment": environment,
            "network_mode": d.network,
            "init": d.init,
            "volumes": [expand(v) for v in d.volumes],
            "stop_signal": "SIGTERM",
        }
        if d.runtime:
            options["runtime"] = d.runtime
        if d.ipc:
            options["ipc_mode"] = d.ipc
        if d.shm_size:
            options["shm_size"] = d.shm_size
        return options

    @property
    def head_container(self) -> Any:
        """The head's container (None before start)."""
        return self._nodes[0].container if self._nodes else None

    @property
    def log_uri(self) -> str:
        """The head container's log as a ``--gx10-logs`` URI."""
        head = self.recipe.head
        return f"docker://{self._name(0, head)}" + (f"@{head.docker_url}" if head.docker_url else "")

    def containers(self) -> list[Any]:
        """Containers of this run, on every engine of the recipe."""
        found = []
        for client in self._clients().values():
            found += client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"})
        return found

    def _clients(self) -> dict[str | None, Any]:
        clients: dict[str | None, Any] = {}
        for node in self._nodes:
            clients.setdefault(node.spec.docker_url, node.client)
        return clients

    # --- start --------------------------------------------------------------------------------

    def start(self, progress: BootListener | None = None) -> Target:
        """Reap leftovers, start the containers (and Ray), start the server, wait for /health."""
        started = time.perf_counter_ns()
        clients: dict[str | None, Any] = {}
        self._nodes, self._serve_exec, self._images = [], None, {}  # a relaunch starts afresh
        try:
            for i, spec in enumerate(self.recipe.nodes):
                if spec.docker_url not in clients:
                    clients[spec.docker_url] = docker_client(spec.docker_url)
                self._nodes.append(_Node(spec, self._name(i, spec), clients[spec.docker_url]))
            self.reap()
            for node in self._nodes:
                self._check_ready(node)
            port = self.recipe.serve.port or free_port()
            head = self.recipe.head
            host = head.address if head.docker_url else "127.0.0.1"
            self.url = self.recipe.url or f"http://{host}:{port}"
            environment = {k: expand(v) for k, v in self.docker.environment.items()}
            argv = self.recipe.serve_argv(port, environment)
            self.serve_argv = argv
            if self.recipe.ray is None:
                node = self._nodes[0]
                node.container = node.client.containers.run(
                    self.docker.image, **self._run_options(node, argv, environment)
                )
            else:
                self._start_ray(environment, started, progress)
                if self.before_serve is not None:
                    self.before_serve(self)
                self._serve_exec = self._exec_serve(argv, environment)
            self._wait_ready(
                self.url,
                what=f"the server of recipe {self.recipe.name} (container {self._nodes[0].name})",
                hint=f"; image {self.docker.image}, command: {' '.join(argv)[:300]}",
                progress=progress,
                started_ns=started,
            )
        except BaseException:  # KeyboardInterrupt included: never leave half a cluster running
            self._remove_all()
            for client in clients.values():
                with contextlib.suppress(Exception):
                    client.close()
            raise
        return Target(
            url=self.url,
            kind="launch",
            description=(
                f"recipe {self.recipe.name}: {len(self._nodes)} container(s) of {self.docker.image}"
                + (", Ray" if self.recipe.ray else "")
            ),
            log_uri=self.log_uri,
        )

    def facts(self) -> dict[str, Any]:
        """The recipe's facts, the image, and what the docker engines say of it: the head's image id
        and repository digests, and each node's image id when they are not all the same."""
        facts = super().facts()
        facts["image"] = self.docker.image
        ids = {name: getattr(image, "id", None) for name, image in self._images.items()}
        head = self._images.get(self._nodes[0].name) if self._nodes else None
        if head is not None:
            facts["image_id"] = getattr(head, "id", None)
            attrs = getattr(head, "attrs", None) or {}
            digests = attrs.get("RepoDigests") if isinstance(attrs, dict) else None
            if digests:
                facts["image_digests"] = list(digests)
        if len(set(ids.values())) > 1:
            facts["image_ids"] = ids  # a worker holding another build of the image than the head
        return facts

    def _check_ready(self, node: _Node) -> None:
        try:
            self._images[node.name] = node.client.images.get(self.docker.image)
        except Exception:
            where = node.spec.docker_url or "the local engine"
            raise LaunchError(
                f"recipe {self.recipe.name}: image {self.docker.image} is not on {where}; build or "
                "load it there first (no image is pulled)"
            ) from None
        clash = node.client.containers.list(all=True, filters={"name": f"^/{node.name}$"})
        if clash:
            raise LaunchError(
                f"recipe {self.recipe.name}: a container named {node.name} exists and is not one of ours "
                f"(no {LABEL_RECIPE} label); remove it or change docker.container_name in {self.recipe.path}"
            )

    def _start_ray(self, environment: dict[str, str], started_ns: int, progress: BootListener | None) -> None:
        ray = self.recipe.ray
        assert ray is not None
        head, workers = self._nodes[0], self._nodes[1:]
        head_cmd = [
            "ray", "start", "--head", f"--port={ray.port}", f"--node-ip-address={head.spec.address}",
            "--block", *ray.head_args,
        ]  # fmt: skip
        head.container = head.client.containers.run(
            self.docker.image, **self._run_options(head, head_cmd, environment)
        )
        for worker in workers:
            cmd = [
                "ray", "start", f"--address={head.spec.address}:{ray.port}",
                f"--node-ip-address={worker.spec.address}", "--block", *ray.worker_args,
            ]  # fmt: skip
            worker.container = worker.client.containers.run(
                self.docker.image, **self._run_options(worker, cmd, environment)
            )
        want = len(self._nodes)
        seen = -1
        while True:
            elapsed_s = (time.perf_counter_ns() - started_ns) / 1e9
            for node in self._nodes:
                node.container.reload()
                if node.container.status not in ("created", "running"):
                    raise LaunchError(
                        f"Ray {node.spec.role} container {node.name} of recipe {self.recipe.name} "
                        f"{self._exit_text(node.container)} before the cluster formed ({seen}/{want} nodes); "
                        f"last lines of its log:\n{_indent(_logs(node.container))}"
                    )
            seen = ray_alive_nodes(head.container, ray.python)
            if seen >= want:
                self.ray_nodes_before_serve = seen
                return
            if elapsed_s >= self.recipe.boot_budget_s:
                raise LaunchError(
                    f"the Ray cluster of recipe {self.recipe.name} has {max(seen, 0)} of {want} nodes alive "
                    f"after the boot budget of {self.recipe.boot_budget_s:g} s (head {head.name} at "
                    f"{head.spec.address}:{ray.port}); last lines of the head's log:\n{_indent(_logs(head.container))}"
                )
            if progress is not None:
                progress(
                    BootProgress(
                        "ray", elapsed_s, self.recipe.boot_budget_s, f"{max(seen, 0)}/{want} Ray nodes alive"
                    )
                )
            time.sleep(1.0)

    def _exec_serve(self, argv: list[str], environment: dict[str, str]) -> str:
        head = self._nodes[0]
        # PID 1's stdout is the container's log: the server's lines land where `docker logs` reads.
        wrapped = ["sh", "-c", 'exec "$@" >/proc/1/fd/1 2>/proc/1/fd/2', "gx10-serve", *argv]
        api = head.client.api
        exec_id: str = api.exec_create(head.container.id, wrapped, environment=environment)["Id"]
        api.exec_start(exec_id, detach=True)
        return exec_id

    # --- watching -----------------------------------------------------------------------------

    def _exited(self) -> str | None:
        head = self._nodes[0]
        with contextlib.suppress(Exception):
            head.container.reload()
        if head.container.status not in ("created", "running"):
            return f"(container {head.name}) {self._exit_text(head.container)}"
        if self._serve_exec is not None:
            # Ray as PID 1 keeps the container up when the server dies: watch the server itself.
            info = head.client.api.exec_inspect(self._serve_exec)
            if not info.get("Running") and info.get("ExitCode") is not None:
                return f"(docker exec in {head.name}) exited with status {info['ExitCode']}"
        return None

    @staticmethod
    def _exit_text(container: Any) -> str:
        state = container.attrs.get("State", {})
        if state.get("OOMKilled"):
            return "was killed for lack of memory"
        return f"exited with status {state.get('ExitCode')}"

    def log_tail(self) -> str:
        """The last lines of the head container's log."""
        return _logs(self._nodes[0].container) if self._nodes else ""

    def last_log_line(self) -> str:
        """The head's last log line (for progress displays)."""
        return last_line(self.log_tail())

    @property
    def alive(self) -> bool:
        """True while the head container runs."""
        return self._exited() is None if self._nodes and self._nodes[0].container is not None else False

    # --- stop ---------------------------------------------------------------------------------

    def reap(self) -> list[str]:
        """Remove containers an earlier run of this recipe left on any of its engines."""
        for client in self._clients().values():
            for container in client.containers.list(
                all=True, filters={"label": f"{LABEL_RECIPE}={self.recipe.name}"}
            ):
                if container.labels.get(LABEL_RUN) == self.run_id:
                    continue
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                self.reaped.append(container.name)
        return self.reaped

    def stop(self) -> None:
        """Stop and remove the containers in reverse order (workers, then the head); ``keep`` leaves them."""
        if not self.keep:
            self._remove_all()
        for client in self._clients().values():
            with contextlib.suppress(Exception):
                client.close()

    def _remove_all(self) -> None:
        for node in reversed(self._nodes):
            container, node.container = node.container, None
            if container is None:
                continue
            with contextlib.suppress(Exception):
                container.stop(timeout=self.docker.stop_timeout_s)
            with contextlib.suppress(Exception):
                container.remove(force=True)
        # And whatever carries this run's label without a handle here: a container created whose start
        # then failed, say.
        for client in self._clients().values():
            with contextlib.suppress(Exception):
                for container in client.containers.list(
                    all=True, filters={"label": f"{LABEL_RUN}={self.run_id}"}
                ):
                    with contextlib.suppress(Exception):
                        container.remove(force=True)


def _logs(container: Any, lines: int = 40) -> str:
    if container is None:
        return ""
    try:
        return bytes(container.logs(stdout=True, stderr=True, tail=lines)).decode("utf-8", "replace")
    except Exception as exc:  # the log is only context for another error
        return f"(log unreadable: {type(exc).__name__}: {exc})"


def _indent(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join("    " + line for line in lines) if lines else "    (the log is empty)"
