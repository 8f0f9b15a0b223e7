"""The twin's server log, in vLLM's line format, so log-signature code can be tested against it.

Lines look like ``(APIServer pid=N) INFO MM-DD HH:MM:SS [api_utils.py:286] message``: the process tag,
the level, the wall-clock time and the source location vLLM would print. Boot lines describe the
profile's deployment (engine config, non-default args, one "Detected MTP model" line per TP rank);
while requests flow, the periodic throughput and SpecDecoding lines are computed from the engine's real
counts over each (simulated) interval; every HTTP request gets a uvicorn access line (which, as in
vLLM 0.32's real log, carries no process prefix).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

from pytest_gx10.fake.engine import StepStats
from pytest_gx10.profiles import Profile

__all__ = ["LogEmitter", "StatLog"]


class LogEmitter:
    """Writes vLLM-style lines to a text stream (a file opened by the caller, or stderr)."""

    def __init__(self, profile: Profile, stream: TextIO | None = None) -> None:
        self.profile = profile
        self.stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()
        self.api_pid = os.getpid()
        # Made-up but stable pids for the processes vLLM would spawn.
        self.engine_pid = self.api_pid + 1
        self.worker_pids = [
            self.api_pid + 2 + rank for rank in range(profile.deployment.tensor_parallel_size)
        ]

    # --- plumbing --------------------------------------------------------------------------------------

    def line(self, proc: str, source: str, message: str, level: str = "INFO") -> None:
        """Write one log line."""
        stamp = time.strftime("%m-%d %H:%M:%S")
        self._write(f"({proc}) {level} {stamp} [{source}] {message}\n")

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (ValueError, OSError):  # closed under us at shutdown
                pass

    @property
    def api(self) -> str:
        """The API server's process tag."""
        return f"APIServer pid={self.api_pid}"

    @property
    def engine(self) -> str:
        """The engine core's process tag."""
        return f"EngineCore pid={self.engine_pid}"

    def worker(self, rank: int) -> str:
        """Process tag of TP rank ``rank``: Ray actors across nodes, or vLLM's own workers."""
        dep = self.profile.deployment
        pid = self.worker_pids[rank]
        if dep.serve_args.get("distributed_executor_backend") == "ray":
            # The head node's actor prints without an address; the others carry their node's IP.
            return (
                f"RayWorkerWrapper pid={pid}"
                if rank == 0
                else f"RayWorkerWrapper pid={pid}, ip=10.0.0.{10 + rank}"
            )
        if dep.tensor_parallel_size > 1:
            return f"Worker_TP{rank} pid={pid}"
        return f"Worker pid={pid}"

    # --- boot ------------------------------------------------------------------------------------------

    def non_default_args(self, host: str, port: int) -> dict[str, Any]:
        """The ``non-default args`` dict vLLM prints for this deployment's command line."""
        dep = self.profile.deployment
        given = self.profile.raw.get("deployment", {})
        model = dep.model_path or dep.served_model_name
        args: dict[str, Any] = {}
        if not _is_cpu(self.profile):
            args["model_tag"] = model  # `vllm serve MODEL`; the CPU recipe runs the api_server module
        args.update(host=host, port=port, model=model, max_model_len=dep.max_model_len)
        if dep.model_path:
            args["served_model_name"] = [dep.served_model_name]
        for key in ("max_num_seqs", "max_num_batched_tokens", "kv_cache_dtype", "reasoning_parser"):
            if key in given:
                args[key] = getattr(dep, key)
        if dep.enable_prompt_tokens_details:  # a flag vLLM prints only when it is on
            args["enable_prompt_tokens_details"] = True
        if dep.tensor_parallel_size != 1:
            args["tensor_parallel_size"] = dep.tensor_parallel_size
        args.update(dep.serve_args)
        if dep.speculative is not None:
            args["speculative_config"] = {
                "method": dep.speculative.method,
                "num_speculative_tokens": dep.speculative.num_speculative_tokens,
            }
        return args

    def engine_config(self) -> str:
        """The ``Initializing a V1 LLM engine ... with config: ...`` message (vLLM 0.32's fields)."""
        dep = self.profile.deployment
        args = dep.serve_args
        model = dep.model_path or dep.served_model_name
        spec = "None"
        if dep.speculative is not None:
            spec = (
                f"SpeculativeConfig(method='{dep.speculative.method}', model='{model}', "
                f"num_spec_tokens={dep.speculative.num_speculative_tokens})"
            )
        quantization = "fp8" if "fp8" in model.lower() else None
        device = "cpu" if _is_cpu(self.profile) else "cuda"
        eager = bool(args.get("enforce_eager", _is_cpu(self.profile)))
        return (
            f"Initializing a V1 LLM engine (v{self.profile.twin.version}) with config: model='{model}', "
            f"speculative_config={spec}, tokenizer='{model}', skip_tokenizer_init=False, tokenizer_mode=auto, "
            f"revision=None, tokenizer_revision=None, trust_remote_code={bool(args.get('trust_remote_code'))}, "
            f"dtype=torch.{args.get('dtype', 'bfloat16')}, max_seq_len={dep.max_model_len}, download_dir=None, "
            f"load_format={args.get('load_format', 'auto')}, tensor_parallel_size={dep.tensor_parallel_size}, "
            f"pipeline_parallel_size=1, data_parallel_size=1, decode_context_parallel_size=1, "
            f"dcp_comm_backend=ag_rs, disable_custom_all_reduce={device == 'cpu'}, quantization={quantization}, "
            f"quantization_config=None, enforce_eager={eager}, "
            f"aux_output_config=AuxOutputConfig(enable_return_routed_experts=False, max_bytes=None), "
            f"kv_cache_dtype={dep.kv_cache_dtype}, device_config={device}, "
            f"structured_outputs_config=StructuredOutputsConfig(backend='auto', disable_any_whitespace=False, "
            f"disable_additional_properties=False, reasoning_parser='{dep.reasoning_parser or ''}', "
            f"reasoning_parser_plugin='', enable_in_reasoning=False), "
            f"observability_config=ObservabilityConfig(show_hidden_metrics_for_version=None, "
            f"otlp_traces_endpoint=None, collect_detailed_traces=None), seed=0, "
            f"served_model_name={dep.served_model_name}, "
            f"enable_prefix_caching={bool(args.get('enable_prefix_caching', True))}, "
            f"enable_chunked_prefill=True, pooler_config=None, "
            f"compilation_config={{'mode': <CompilationMode.{'NONE: 0' if eager else 'VLLM_COMPILE: 3'}>}}"
        )

    def banner(self) -> None:
        """vLLM 0.32's start-up banner (replaces the older "vLLM API server version" line)."""
        dep = self.profile.deployment
        art = (
            "",
            "       █     █     █▄   ▄█",
            f" ▄▄ ▄█ █     █     █ ▀▄▀ █  version {self.profile.twin.version}",
            f"  █▄█▀ █     █     █     █  model   {dep.model_path or dep.served_model_name}",
            "   ▀▀  ▀▀▀▀▀ ▀▀▀▀▀ ▀     ▀",
            "",
        )
        for text in art:
            self.line(self.api, "api_utils.py:347", text)

    def boot(
        self, host: str, port: int, time_scale: float, kv_cache_tokens: int, routes: list[tuple[str, str]]
    ) -> None:
        """The lines a vLLM server prints from launch to ready."""
        dep = self.profile.deployment
        device = "CPU" if _is_cpu(self.profile) else "GPU"
        self.banner()
        self.line(self.api, "api_utils.py:286", f"non-default args: {self.non_default_args(host, port)!r}")
        spec = dep.speculative
        if spec is not None and spec.num_speculative_tokens > 1 and spec.method == "mtp":
            self.line(
                self.api,
                "speculative.py:722",
                "Enabling num_speculative_tokens > 1 will run multiple times of forward on same MTP layer, "
                "which may result in lower acceptance rate",
                level="WARNING",
            )
        self.line(self.engine, "core.py:133", self.engine_config())
        runner = f"{device.lower()}_model_runner.py:68"
        model = dep.model_path or dep.served_model_name
        for rank in range(dep.tensor_parallel_size):
            self.line(self.worker(rank), runner, f"Starting to load model {model}...")
        if spec is not None and spec.method == "mtp":
            for rank in range(dep.tensor_parallel_size):
                self.line(
                    self.worker(rank),
                    "eagle.py:983",
                    "Detected MTP model. Sharing target model embedding weights with the draft model.",
                )
        self.line(
            self.engine,
            "kv_cache_utils.py:2327",
            f"{device} KV cache size: {kv_cache_tokens:,} tokens, Maximum concurrency for "
            f"{dep.max_model_len:,} tokens per request: {kv_cache_tokens / dep.max_model_len:.2f}x",
        )
        self.line(self.api, "entry.py:136", "Supported tasks: ['generate']")
        self.line(
            self.api,
            "entry.py:138",
            f"pytest-gx10 twin of {dep.served_model_name} (profile {self.profile.name}, time scale {time_scale:g})",
        )
        for effect in self.profile.effects_applied:  # what the profile's [[twin.effects]] changed
            self.line(self.api, "entry.py:139", f"pytest-gx10 twin effect: {effect}")
        self.line(self.api, "entry.py:140", f"Starting vLLM server on http://{host}:{port}")
        self.line(self.api, "launcher.py:186", "Available routes are:")
        for path, methods in routes:
            self.line(self.api, "launcher.py:195", f"Route: {path}, Methods: {methods}")
        # uvicorn writes straight to stdout: no process prefix.
        self._write(f"INFO:     Started server process [{self.api_pid}]\n")
        self._write("INFO:     Waiting for application startup.\n")
        self._write("INFO:     Application startup complete.\n")

    def access(self, client: str, method: str, path: str, status: int, phrase: str) -> None:
        """A uvicorn access line (no process prefix, as uvicorn prints it)."""
        self._write(f'INFO:     {client} - "{method} {path} HTTP/1.1" {status} {phrase}\n')

    def model_not_found(self, message: str) -> None:
        """The ERROR line vLLM logs when a request names an unknown model."""
        info = f"ErrorInfo(message={message!r}, type='NotFoundError', param='model', code=404)"
        self.line(self.api, "serving.py:274", f"Error with model error={info}", level="ERROR")

    def engine_death(self) -> None:
        """The lines of the reference post's MTP-5 crash, stamped now: every TP rank hits an illegal memory
        access, NCCL's watchdog tears the process group down, the executor sees its worker die, and the
        API server's output handler raises EngineDeadError.
        """
        dep = self.profile.deployment
        ray = dep.serve_args.get("distributed_executor_backend") == "ray"
        cuda_error = "CUDA error: an illegal memory access was encountered"
        glog = time.strftime("%m%d %H:%M:%S").lstrip("0") + f".{int(time.time() * 1e6) % 1_000_000:06d}"
        for rank in range(dep.tensor_parallel_size):
            tag = self.worker(rank)
            self.line(tag, "worker_base.py:620", "Error executing method 'execute_model'.", level="ERROR")
            self._write(f"({tag}) Traceback (most recent call last):\n")
            self._write(f"({tag}) torch.AcceleratorError: {cuda_error}\n")
            # torch's C++ side logs in glog's format, without the process tag (as the post quotes it).
            self._write(
                f"[rank{rank}]:[E{glog} ProcessGroupNCCL.cpp:2119] [PG ID 2 PG GUID 3 Rank {rank}] "
                f"Process group watchdog thread terminated with exception: {cuda_error}\n"
            )
        if ray:
            self._write(
                "(raylet) A worker died or was killed while executing a task by an unexpected system error. "
                "Worker exit type: SYSTEM_ERROR Worker exit detail: Worker unexpectedly exits with a "
                "connection error code 2. End of file.\n"
            )
            self.line(
                self.engine,
                "ray_executor_v2.py:464",
                "RayWorkerProc rank=[0] died unexpectedly, shutting down executor.",
                level="ERROR",
            )
        else:
            self.line(
                self.engine,
                "multiproc_executor.py:154",
                "Worker proc VllmWorker-0 died unexpectedly, shutting down executor.",
                level="ERROR",
            )
        self.line(self.api, "async_llm.py:704", "AsyncLLM output_handler failed.", level="ERROR")
        self.line(self.api, "async_llm.py:704", "Traceback (most recent call last):", level="ERROR")
        self.line(
            self.api,
            "async_llm.py:704",
            "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. "
            "See stack trace (above) for the root cause.",
            level="ERROR",
        )

    def stream_error(self, kind: str) -> None:
        """The ERROR line vLLM logs when a stream ends in an in-band error frame."""
        what = "chat completion" if kind == "chat" else "completion"
        self.line(self.api, "serving.py:1386", f"Error in {what} stream generator.", level="ERROR")

    def api_server_exit(self) -> None:
        """The API server's watchdog saw the dead engine: uvicorn shuts down and the server process ends."""
        self.line(self.api, "launcher.py:254", "[shutdown] API server: shutdown triggered")
        self._write("INFO:     Shutting down\n")
        self._write("INFO:     Waiting for application shutdown.\n")
        self._write("INFO:     Application shutdown complete.\n")
        self._write(f"INFO:     Finished server process [{self.api_pid}]\n")

    def shutdown(self) -> None:
        """The lines vLLM and uvicorn print on a clean stop."""
        self.line(self.api, "launcher.py:254", "[shutdown] API server: shutdown triggered")
        self._write("INFO:     Shutting down\n")
        self._write("INFO:     Waiting for application shutdown.\n")
        self._write("INFO:     Application shutdown complete.\n")


def _is_cpu(profile: Profile) -> bool:
    # The profile has no device field; the CPU build's profiles say so in their name.
    return "cpu" in profile.name.lower()


class StatLog:
    """Accumulates engine steps over one log interval and prints vLLM's periodic lines."""

    def __init__(self, emitter: LogEmitter) -> None:
        self.emitter = emitter
        spec = emitter.profile.deployment.speculative
        self.num_spec_tokens = spec.num_speculative_tokens if spec else 0
        self.device = "CPU" if _is_cpu(emitter.profile) else "GPU"
        self._last_prompt_tps = 0.0
        self._last_generation_tps = 0.0
        self._prefix_queries = 0
        self._prefix_hits = 0
        self._last = StepStats()
        self._reset()

    def _reset(self) -> None:
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.drafts = 0
        self.draft_tokens = 0
        self.accepted = 0
        self.accepted_per_pos = [0] * self.num_spec_tokens

    def on_step(self, stats: StepStats) -> None:
        """Fold one engine step into the interval."""
        self.prompt_tokens += stats.num_prompt_tokens
        self.generation_tokens += stats.num_generation_tokens
        self._prefix_queries += stats.prefix_cache_queries
        self._prefix_hits += stats.prefix_cache_hits
        self.drafts += stats.num_drafts
        self.draft_tokens += stats.num_draft_tokens
        self.accepted += stats.num_accepted_tokens
        for pos, n in enumerate(stats.accepted_per_pos[: self.num_spec_tokens]):
            self.accepted_per_pos[pos] += n
        if stats.step_s:  # abort-only updates carry no scheduler state
            self._last = stats

    def log(self, interval_s: float) -> None:
        """Print the interval's lines (skipped while idle, as vLLM demotes them to DEBUG) and reset."""
        prompt_tps = self.prompt_tokens / interval_s if interval_s > 0 else 0.0
        generation_tps = self.generation_tokens / interval_s if interval_s > 0 else 0.0
        busy = any((prompt_tps, generation_tps, self._last_prompt_tps, self._last_generation_tps))
        self._last_prompt_tps, self._last_generation_tps = prompt_tps, generation_tps
        if busy:
            hit_rate = self._prefix_hits / self._prefix_queries if self._prefix_queries else 0.0
            last = self._last
            self.emitter.line(
                self.emitter.api,
                "loggers.py:335",
                f"Engine 000: Avg prompt throughput: {prompt_tps:.1f} tokens/s, "
                f"Avg generation throughput: {generation_tps:.1f} tokens/s, "
                f"Running: {last.num_running} reqs, Waiting: {last.num_waiting} reqs, "
                f"{self.device} KV cache usage: {last.kv_cache_usage * 100:.1f}%, "
                f"Prefix cache hit rate: {hit_rate * 100:.1f}%",
            )
            if self.drafts:
                rates = ", ".join(f"{n / self.drafts:.3f}" for n in self.accepted_per_pos)
                acceptance = self.accepted / self.draft_tokens * 100 if self.draft_tokens else float("nan")
                self.emitter.line(
                    self.emitter.api,
                    "metrics.py:96",
                    f"SpecDecoding metrics: Mean acceptance length: {1 + self.accepted / self.drafts:.2f}, "
                    f"Accepted throughput: {self.accepted / interval_s:.2f} tokens/s, "
                    f"Drafted throughput: {self.draft_tokens / interval_s:.2f} tokens/s, "
                    f"Accepted: {self.accepted} tokens, Drafted: {self.draft_tokens} tokens, "
                    f"Per-position acceptance rate: {rates}, Avg Draft acceptance rate: {acceptance:.1f}%",
                )
        self._reset()
