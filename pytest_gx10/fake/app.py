"""The twin's HTTP application (starlette, as under vLLM's FastAPI server), following vLLM's wire format.

Routes: ``/health``, ``/ping``, ``/version``, ``/load``, ``/metrics``, ``/v1/models``, ``/tokenize``,
``/detokenize``, ``/v1/completions``, ``/v1/chat/completions``. Every response carries
``x-gx10-time-scale``; with an API key, ``/v1/*`` requires ``Authorization: Bearer <key>``. Faults
(``pytest_gx10.fake.faults``) come from the profile, the command line or an ``x-gx10-fault`` header.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pytest_gx10.fake import wire
from pytest_gx10.fake.checks import check_fields, check_prompt_chars, check_text, max_chars_per_token
from pytest_gx10.fake.engine import Engine, EngineDeadError, Output, RequestStream, SamplingParams, StepStats
from pytest_gx10.fake.faults import (
    FAULT_HEADER,
    Fault,
    FaultInjector,
    FaultSpecError,
    StreamFault,
    engine_dead_body,
)
from pytest_gx10.fake.logprobs import LogprobWriter
from pytest_gx10.fake.logs import LogEmitter, StatLog
from pytest_gx10.fake.model import Script, write_script
from pytest_gx10.fake.protocol import (
    ApiError,
    CommonParams,
    bad_request,
    check_sampling,
    parse_chat,
    parse_completion,
    parse_json_body,
    unsupported_media_type,
)
from pytest_gx10.fake.reasoning import ReasoningSplitter, split_reasoning
from pytest_gx10.fake.telemetry import CONTENT_TYPE, EngineMetrics
from pytest_gx10.fake.tokenizer import ChatTemplateError, Tokenizer
from pytest_gx10.profiles import Profile

__all__ = [
    "TIME_SCALE_HEADER",
    "VIRTUAL_ARRIVAL_HEADER",
    "VIRTUAL_TIME_HEADER",
    "TwinState",
    "create_app",
    "route_table",
]

TIME_SCALE_HEADER = "x-gx10-time-scale"
# A client of the twin's own that sends ``x-gx10-virtual-time: 1`` with a streaming request is told
# the engine's virtual times: the request's arrival in the response header x-gx10-virtual-arrival,
# and before each data line an SSE comment ``: t=<seconds>`` (the step that produced it ended then).
# Without the request header the stream is vLLM's, byte for byte.
VIRTUAL_TIME_HEADER = "x-gx10-virtual-time"
VIRTUAL_ARRIVAL_HEADER = "x-gx10-virtual-arrival"


@dataclass
class TwinState:
    """Everything the routes share: the profile, tokenizer, engine, metrics and log."""

    profile: Profile
    time_scale: float
    log: LogEmitter
    api_key: str | None = None
    faults: Sequence[Fault] = ()  # besides the profile's (the command line's)
    tokenizer: Tokenizer = field(default_factory=Tokenizer)
    engine: Engine = field(init=False)
    injector: FaultInjector = field(init=False)
    metrics: EngineMetrics = field(init=False)
    stat_log: StatLog = field(init=False)
    created: int = field(default_factory=lambda: wire.now_s())
    fingerprint: str = field(init=False)
    ground_truth: GroundTruth = field(init=False)

    def __post_init__(self) -> None:
        self.fingerprint = wire.system_fingerprint(
            self.profile.twin.version, self.profile.deployment.served_model_name
        )
        self.engine = Engine(self.profile, self.tokenizer, time_scale=self.time_scale)
        self.metrics = EngineMetrics(self.profile, kv_cache_tokens=self.engine.kv_cache_tokens)
        self.stat_log = StatLog(self.log)
        self.ground_truth = GroundTruth()
        self.engine.observers += [self.metrics, self.stat_log, self.ground_truth]
        self.injector = FaultInjector(
            [*self.profile.twin.faults, *self.faults], self.engine, self.log, self.time_scale
        )

    @property
    def served_model_name(self) -> str:
        """The name clients must send as ``model``."""
        return self.profile.deployment.served_model_name

    @property
    def max_model_len(self) -> int:
        """Context length, prompt plus output."""
        return self.profile.deployment.max_model_len

    @property
    def reasoning(self) -> bool:
        """True when the deployment runs a reasoning parser (the model thinks first)."""
        return self.profile.deployment.reasoning_parser is not None

    def cached_tokens(self, stream: RequestStream) -> int | None:
        """The usage's ``prompt_tokens_details.cached_tokens``: the prompt tokens the prefix cache
        served ``stream`` at its first scheduling, when the deployment reports them (else None)."""
        if not self.profile.deployment.enable_prompt_tokens_details:
            return None
        return stream.num_cached_tokens


def _error(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


def _check_model(state: TwinState, model: str | None) -> None:
    if model is not None and model != state.served_model_name:
        message = f"The model `{model}` does not exist. Valid aliases: {state.served_model_name}."
        state.log.model_not_found(message)
        raise ApiError(HTTPStatus.NOT_FOUND, message, "NotFoundError", "model")


def _context_error(state: TwinState, num_prompt_tokens: int) -> ApiError:
    # vLLM stops tokenizing one token past the limit, hence "at least" and max_model_len + 1.
    seen = min(num_prompt_tokens, state.max_model_len + 1)
    return bad_request(
        f"This model's maximum context length is {state.max_model_len} tokens. However, your prompt "
        f"contains at least {seen} input tokens, which exceeds this limit even without any output tokens. "
        f"Please reduce the length of the input prompt.",
        "input_tokens",
        seen,
    )


def _check_max_tokens(state: TwinState, common: CommonParams) -> None:
    """vLLM refuses a max_tokens above max_model_len before it tokenizes (a smaller one is clamped later)."""
    if common.max_tokens is not None and common.max_tokens > state.max_model_len:
        raise bad_request(
            f"{common.max_tokens_param}={common.max_tokens} cannot be greater than "
            f"max_model_len={state.max_model_len}. Please request fewer output tokens.",
            common.max_tokens_param,
            common.max_tokens,
        )


def _sampling(state: TwinState, common: CommonParams, num_prompt_tokens: int) -> SamplingParams:
    """Check the prompt fits and clamp max_tokens to the context that is left, as vLLM does.

    A prompt of exactly max_model_len tokens leaves 0 and fails as "max_tokens must be at least 1".
    """
    if num_prompt_tokens > state.max_model_len:
        raise _context_error(state, num_prompt_tokens)
    room = state.max_model_len - num_prompt_tokens
    wanted = common.max_tokens if common.max_tokens is not None else state.profile.twin.default_output_tokens
    clamped = min(wanted, room)
    check_sampling(dataclasses.replace(common, max_tokens=clamped))
    return SamplingParams(
        max_tokens=clamped,
        min_tokens=min(common.min_tokens, room),
        ignore_eos=common.ignore_eos,
        stop=common.stop,
        stop_token_ids=common.stop_token_ids,
        include_stop_str_in_output=common.include_stop_str_in_output,
    )


def _truncate(state: TwinState, common: CommonParams, prompt_ids: list[int]) -> list[int]:
    """``truncate_prompt_tokens`` (-1: the context) keeps that many tokens, the last by default."""
    keep = common.truncate_prompt_tokens
    if keep is None:
        return prompt_ids
    keep = state.max_model_len if keep == -1 else keep
    if len(prompt_ids) <= keep:
        return prompt_ids
    return prompt_ids[:keep] if common.truncation_side == "right" else prompt_ids[len(prompt_ids) - keep :]


def _writer(state: TwinState, common: CommonParams, prompt_ids: list[int]) -> LogprobWriter:
    key = b"".join(t.to_bytes(4, "big") for t in prompt_ids) + f"|{common.seed}".encode()
    return LogprobWriter(state.tokenizer, key, common.as_token_ids)


async def _json_body(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise unsupported_media_type()
    return parse_json_body(await request.body())


# --- simple endpoints ----------------------------------------------------------------------------------


def _state(request: Request) -> TwinState:
    state: TwinState = request.app.state.twin
    return state


async def health(request: Request) -> Response:
    """200 with an empty body while the engine runs; 503 once it has died (vLLM's EngineDeadError path)."""
    return Response(status_code=_state(request).injector.health_status())


async def version(request: Request) -> Response:
    """``{"version": ...}``."""
    return JSONResponse({"version": _state(request).profile.twin.version})


async def load(request: Request) -> Response:
    """``{"server_load": 0}``: vLLM reports 0 unless started with --enable-server-load-tracking."""
    return JSONResponse({"server_load": 0})


async def metrics(request: Request) -> Response:
    """Prometheus text."""
    return Response(_state(request).metrics.render(), headers={"content-type": CONTENT_TYPE})


async def models(request: Request) -> Response:
    """The one served model."""
    state = _state(request)
    dep = state.profile.deployment
    body = wire.model_card_list(
        dep.served_model_name, dep.model_path or dep.served_model_name, dep.max_model_len, wire.now_s()
    )
    return JSONResponse(body)


async def tokenize(request: Request) -> Response:
    """Completion form (``prompt``) or chat form (``messages``)."""
    state = _state(request)
    body = await _json_body(request)
    model = body.get("model")
    _check_model(state, model if isinstance(model, str) else None)
    tok = state.tokenizer
    if "messages" in body:
        messages = body["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise bad_request("messages must be a list of objects.", "messages")
        try:
            text = tok.apply_chat_template(
                messages,
                add_generation_prompt=body.get("add_generation_prompt", True) is not False,
                # Same template flag as chat completions use, so counts agree exactly.
                enable_thinking=_template_thinking(
                    state, (body.get("chat_template_kwargs") or {}).get("enable_thinking", True) is not False
                ),
                continue_final_message=body.get("continue_final_message") is True,
            )
        except ChatTemplateError as exc:
            raise bad_request(str(exc), "messages") from None
        ids = tok.encode(text, add_special_tokens=body.get("add_special_tokens") is True)
    else:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise bad_request("prompt must be a string.", "prompt")
        check_text(prompt)
        ids = tok.encode(prompt, add_special_tokens=body.get("add_special_tokens", True) is not False)
    token_strs = [tok.token_str(i) for i in ids] if body.get("return_token_strs") is True else None
    return JSONResponse(
        {"count": len(ids), "max_model_len": state.max_model_len, "tokens": ids, "token_strs": token_strs}
    )


async def detokenize(request: Request) -> Response:
    """``{"tokens": [...]}`` -> ``{"prompt": text}``."""
    state = _state(request)
    body = await _json_body(request)
    model = body.get("model")
    _check_model(state, model if isinstance(model, str) else None)
    tokens = body.get("tokens")
    if not isinstance(tokens, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in tokens
    ):
        raise bad_request("tokens must be a list of integers.", "tokens")
    # Ids outside the vocabulary decode to nothing, as with Hugging Face tokenizers.
    tok = state.tokenizer
    if tok.first_invalid(tokens) is not None:
        tokens = [t for t in tokens if tok.is_valid(t)]
    return JSONResponse({"prompt": tok.decode(tokens)})


# --- generation ----------------------------------------------------------------------------------------


async def _request_fault(state: TwinState, request: Request) -> tuple[Fault | None, Response | None]:
    """This request's fault, and the response that replaces the completion (HTTP 500 kinds) if any."""
    try:
        fault = state.injector.on_request(request.headers.get(FAULT_HEADER))
    except FaultSpecError as exc:
        raise bad_request(f"{FAULT_HEADER}: {exc}", FAULT_HEADER) from None
    if fault is None:
        return None, None
    if fault.kind in ("http_500", "error_fraction"):
        if fault.body == "text":  # uvicorn's answer to an unhandled exception
            return fault, PlainTextResponse("Internal Server Error", status_code=500)
        if fault.body == "empty":  # vLLM's launcher's answer to an engine error it catches
            return fault, Response(status_code=500)
        err = ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error", "InternalServerError")
        return fault, _error(err)
    if fault.kind == "slow_ttft":
        await asyncio.sleep(fault.extra_s / state.time_scale)
    return fault, None


def _stream_error_frame(state: TwinState, kind: str) -> bytes:
    """vLLM's in-band error frame for a stream whose engine died (json.dumps, not pydantic's compact form)."""
    state.log.stream_error(kind)
    return f"data: {json.dumps(engine_dead_body())}\n\n".encode()


def _submit(
    state: TwinState,
    id_prefix: str,
    prompt_ids: list[int],
    script: Script,
    params: SamplingParams,
    fault: Fault | None,
    given_id: str | None = None,
) -> RequestStream:
    """Hand a request to the engine under a new id (``cmpl-...``, or the request's own ``request_id``
    after the prefix, as vLLM names it); its outputs arrive on the stream.

    A fault that ends the request early (``zero_tokens``, ``abort``) is the engine's to apply.
    """
    request_id = wire.new_request_id(id_prefix) if given_id is None else f"{id_prefix}-{given_id}"
    stream = state.engine.add_request(
        request_id, prompt_ids, script, params, finish_at=FaultInjector.finish_at(fault)
    )
    if fault is not None and fault.kind == "slow_ttft":  # it was held that long before the engine saw it
        stream.arrival_s -= fault.extra_s
    return stream


def _sse_response(
    state: TwinState,
    stream: RequestStream,
    fault: Fault | None,
    *,
    kind: str,
    chunk: Callable[[Output, bool, str | None], dict[str, Any] | None],
    usage: Callable[[int], dict[str, Any]] | None,
    opening: Sequence[dict[str, Any]] = (),
    virtual: bool = False,
) -> StreamingResponse:
    """A request's outputs as vLLM streams them (``kind``: ``completion`` or ``chat``).

    ``opening`` (chunks) goes out when the first output arrives; then each output's
    ``chunk(out, first, fingerprint)`` (None: nothing to send for it; ``fingerprint`` is set on the
    finishing chunk of a stream without usage), the ``usage(tokens out)`` chunk when asked, and
    ``[DONE]``. A fault that acts on the stream (``cut``, ``stall``) may end or hold it after any
    chunk sent; an engine that dies sends vLLM's in-band error frame. ``virtual``: the client asked
    for the engine's virtual times (see ``VIRTUAL_TIME_HEADER``).
    """
    fingerprint = state.fingerprint
    # A stall that then aborts finishes the request in the engine: its "abort" chunk still goes out.
    gate = StreamFault.of(fault, state.time_scale, lambda: state.engine.abort(stream.request_id))

    t_s: float | None = None  # the virtual time of the latest output

    def sse(obj: Any) -> bytes:
        if virtual and t_s is not None:
            return f": t={t_s:.9f}\n".encode() + wire.sse(obj)
        return wire.sse(obj)

    async def events() -> AsyncIterator[bytes]:
        nonlocal t_s
        n_out = 0
        first = True
        try:
            if gate is not None and await gate.cut(0):
                return
            async for out in stream:
                t_s = out.t_s if out.t_s is not None else t_s
                if first:
                    for opening_chunk in opening:
                        yield sse(opening_chunk)
                n_out += len(out.token_ids)
                finishing = out.finish_reason is not None
                body = chunk(out, first, fingerprint if finishing and usage is None else None)
                first = False
                if body is None:
                    continue
                yield sse(body)
                if gate is not None and not finishing and await gate.cut(n_out):
                    return
            if usage is not None:
                yield sse(usage(n_out))
        except EngineDeadError:
            yield _stream_error_frame(state, kind)
        finally:
            stream.abort()
        yield sse("[DONE]")

    headers = {VIRTUAL_ARRIVAL_HEADER: f"{stream.arrival_s:.9f}"} if virtual else None
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _wants_virtual_time(request: Request) -> bool:
    """The client asked for the engine's virtual times (the plugin's own client, on the embedded twin)."""
    return request.headers.get(VIRTUAL_TIME_HEADER, "").strip() == "1"


async def _watch_disconnect(request: Request, on_disconnect: Callable[[], None]) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            on_disconnect()
            return


async def _collect(
    request: Request, outputs: AsyncIterator[Output], abort: Callable[[], None]
) -> list[Output]:
    """All outputs of a non-streaming request; a client that goes away aborts it, as in vLLM."""
    watcher = asyncio.create_task(_watch_disconnect(request, abort))
    try:
        return [out async for out in outputs]
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def _check_suffix(body: Mapping[str, Any]) -> None:
    """vLLM's renderer refuses a ``suffix`` (fill-in-the-middle) for a model without FIM rendering,
    as SmolLM2 and the twin's models are; its sentences carry no ``(parameter=...)`` suffix."""
    if body.get("suffix") is None:
        return
    if body.get("echo") is True:
        message = "Echo is unsupported with suffix."
    elif body.get("truncate_prompt_tokens") is not None:
        message = "suffix is not supported with truncate_prompt_tokens"
    elif isinstance(body.get("prompt"), str):
        message = "suffix is only supported for models with FIM completion rendering"
    else:
        message = "suffix requires text prompt input for FIM completion rendering"
    raise ApiError(HTTPStatus.BAD_REQUEST, message, "BadRequestError", "suffix")


async def completions(request: Request) -> Response:
    """``POST /v1/completions``."""
    state = _state(request)
    raw_body = await _json_body(request)
    parsed = parse_completion(raw_body)
    check_fields(raw_body, chat=False, vocab_size=state.tokenizer.vocab_size)
    common = parsed.common
    echo_only = parsed.echo and common.max_tokens == 0  # vLLM echoes the prompt and generates one token
    if echo_only:
        common = dataclasses.replace(common, max_tokens=1)
    _check_model(state, common.model)
    _check_max_tokens(state, common)
    _check_suffix(raw_body)
    tok = state.tokenizer
    if isinstance(parsed.prompt, str):
        prompt_text = parsed.prompt
        check_text(prompt_text)
        check_prompt_chars(prompt_text, state.max_model_len, max_chars_per_token(tok))
        prompt_ids = tok.encode(prompt_text)
    else:
        bad = tok.first_invalid(parsed.prompt)
        if bad is not None:
            raise bad_request(f"Token id {bad} is out of vocabulary", "prompt", bad)
        prompt_ids = list(parsed.prompt)
        prompt_text = tok.decode(prompt_ids) if parsed.echo else ""
    prompt_ids = _truncate(state, common, prompt_ids)
    params = _sampling(state, common, len(prompt_ids))
    fault, replaced = await _request_fault(state, request)
    if replaced is not None:
        return replaced
    script = write_script(tok, prompt_ids, prompt_text, kind="completion", reasoning=False, seed=common.seed)
    stream = _submit(state, "cmpl", prompt_ids, script, params, fault, common.request_id)
    request_id = stream.request_id
    model, created, n_prompt = state.served_model_name, wire.now_s(), len(prompt_ids)
    fingerprint = state.fingerprint
    echo = prompt_text if parsed.echo else ""
    writer = _writer(state, common, prompt_ids)
    echoed_ids = prompt_ids if parsed.echo else []
    ids_back = common.return_token_ids

    if not common.stream:
        outs = await _collect(request, stream, stream.abort)
        last = outs[-1]
        token_ids = [t for o in outs for t in o.token_ids]
        shown_ids = [] if echo_only else token_ids
        body = wire.completion_response(
            request_id,
            created,
            model,
            text=echo + ("" if echo_only else "".join(o.text for o in outs)),
            finish_reason=last.finish_reason or "abort",
            stop_reason=last.stop_reason,
            prompt_tokens=n_prompt,
            completion_tokens=len(token_ids),
            fingerprint=fingerprint,
            cached_tokens=state.cached_tokens(stream),
            logprobs=None
            if common.logprobs is None
            else writer.completion(shown_ids, 0, common.logprobs, prompt=echoed_ids),
            token_ids=token_ids if ids_back else None,
            prompt_logprobs=None
            if common.prompt_logprobs is None
            else writer.prompt(prompt_ids, common.prompt_logprobs),
            prompt_token_ids=prompt_ids if ids_back else None,
        )
        return JSONResponse(body)

    progress = {"tokens": 0, "offset": 0}

    def chunk(out: Output, first: bool, finishing_fingerprint: str | None) -> dict[str, Any]:
        text = "" if echo_only else out.text
        ids = list(out.token_ids)
        logprobs = None
        if common.logprobs is not None:
            shown = [] if echo_only else ids
            prompt_part = echoed_ids if first else []
            logprobs = writer.completion(
                shown, progress["tokens"], common.logprobs, progress["offset"], prompt=prompt_part
            )
            if logprobs["tokens"]:
                progress["offset"] = logprobs["text_offset"][-1] + len(logprobs["tokens"][-1])
        progress["tokens"] += len(ids)
        return wire.completion_chunk(
            request_id,
            created,
            model,
            (echo + text) if first else text,
            finish_reason=out.finish_reason,
            stop_reason=out.stop_reason,
            fingerprint=finishing_fingerprint,
            logprobs=logprobs,
            token_ids=ids if ids_back else None,
            # vLLM sends the prompt's ids once, first, when it echoes or returns token ids.
            prompt_token_ids=prompt_ids if first and (parsed.echo or ids_back) else None,
            usage=wire.running_usage(n_prompt, progress["tokens"], chat=False)
            if common.continuous_usage
            else None,
        )

    def usage(n_out: int) -> dict[str, Any]:
        return wire.usage_chunk(
            request_id,
            created,
            model,
            "text_completion",
            n_prompt,
            n_out,
            fingerprint,
            cached_tokens=state.cached_tokens(stream),
        )

    return _sse_response(
        state,
        stream,
        fault,
        kind="completion",
        chunk=chunk,
        usage=usage if common.include_usage else None,
        virtual=_wants_virtual_time(request),
    )


def _template_thinking(state: TwinState, enable_thinking: bool) -> bool:
    """The chat template's enable_thinking flag.

    Only a reasoning model's (Qwen3-style) template writes an empty think block when thinking is
    turned off; a model without a reasoning parser has a template that knows nothing of thinking.
    """
    return enable_thinking or not state.reasoning


def _chat_prompt(
    state: TwinState,
    messages: list[dict[str, Any]],
    add_generation_prompt: bool,
    continue_final_message: bool,
    thinking: bool,
) -> str:
    try:
        return state.tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=add_generation_prompt,
            enable_thinking=thinking,
            continue_final_message=continue_final_message,
        )
    except ChatTemplateError as exc:
        raise bad_request(str(exc), "messages") from None


def _reasoning_tokens(tok: Tokenizer, token_ids: list[int]) -> int:
    """Tokens inside the ``<think>`` block (the usage's ``completion_tokens_details.reasoning_tokens``)."""
    try:
        start = token_ids.index(tok.think_start_id) + 1
    except ValueError:
        return 0
    try:
        end = token_ids.index(tok.think_end_id, start)
    except ValueError:
        end = len(token_ids)
    return end - start


async def chat_completions(request: Request) -> Response:
    """``POST /v1/chat/completions``."""
    state = _state(request)
    raw_body = await _json_body(request)
    parsed = parse_chat(raw_body)
    check_fields(raw_body, chat=True, vocab_size=state.tokenizer.vocab_size)
    common = parsed.common
    _check_model(state, common.model)
    _check_max_tokens(state, common)
    if not parsed.messages:
        raise bad_request(
            "Cannot apply chat template to an empty conversation. Provide at least one message."
        )
    tok = state.tokenizer
    thinking = state.reasoning and parsed.enable_thinking
    prompt_text = _chat_prompt(
        state,
        parsed.messages,
        parsed.add_generation_prompt,
        parsed.continue_final_message,
        _template_thinking(state, parsed.enable_thinking),
    )
    check_text(prompt_text)
    check_prompt_chars(prompt_text, state.max_model_len, max_chars_per_token(tok))
    prompt_ids = _truncate(state, common, tok.encode(prompt_text, add_special_tokens=False))
    params = _sampling(state, common, len(prompt_ids))
    script = write_script(
        tok,
        prompt_ids,
        prompt_text,
        kind="chat",
        reasoning=thinking,
        seed=common.seed,
        needle_horizon_tokens=state.profile.twin.needle_horizon_tokens,
        reasoning_tokens=state.profile.twin.reasoning_tokens,
    )
    fault, replaced = await _request_fault(state, request)
    if replaced is not None:
        return replaced
    stream = _submit(state, "chatcmpl", prompt_ids, script, params, fault, common.request_id)
    request_id = stream.request_id
    model, created, n_prompt = state.served_model_name, wire.now_s(), len(prompt_ids)
    fingerprint = state.fingerprint
    parse_reasoning = state.reasoning  # the parser runs whenever the server has one configured
    # Without a generation prompt vLLM answers in the last message's role, and echo repeats that
    # message's text when its role is the answer's.
    role = "assistant"
    if not parsed.add_generation_prompt and parsed.messages:
        role = str(parsed.messages[-1].get("role", role))
    echo = ""
    if common.echo and parsed.messages and parsed.messages[-1].get("role") == role:
        last_content = parsed.messages[-1].get("content") or ""
        if isinstance(last_content, list):
            last_content = "\n".join(str(part.get("text", "")) for part in last_content)
        echo = str(last_content)
    writer = _writer(state, common, prompt_ids)
    # Hidden reasoning must not leak through per-token metadata: vLLM then drops logprobs and ids.
    metadata = not (parse_reasoning and not parsed.include_reasoning)
    logprobs_n = common.logprobs if metadata else None
    ids_back = common.return_token_ids and metadata
    prompt_logprobs = (
        None if common.prompt_logprobs is None else writer.prompt(prompt_ids, common.prompt_logprobs)
    )
    shown_prompt = prompt_text if parsed.return_prompt_text else None

    if not common.stream:
        outs = await _collect(request, stream, stream.abort)
        last = outs[-1]
        text = "".join(o.text for o in outs)
        token_ids = [t for o in outs for t in o.token_ids]
        reasoning, content = (
            split_reasoning(text, thinking=parsed.enable_thinking) if parse_reasoning else (None, text)
        )
        body = wire.chat_response(
            request_id,
            created,
            model,
            content=echo + (content or "") if echo else content,
            reasoning=reasoning if parsed.include_reasoning else None,
            finish_reason=last.finish_reason or "abort",
            stop_reason=last.stop_reason,
            prompt_tokens=n_prompt,
            completion_tokens=len(token_ids),
            fingerprint=fingerprint,
            reasoning_tokens=_reasoning_tokens(tok, token_ids) if parse_reasoning else None,
            cached_tokens=state.cached_tokens(stream),
            logprobs=None if logprobs_n is None else writer.chat(token_ids, 0, logprobs_n),
            token_ids=token_ids if ids_back else None,
            prompt_logprobs=prompt_logprobs,
            prompt_token_ids=prompt_ids if common.return_token_ids else None,
            prompt_text=shown_prompt,
            role=role,
        )
        return JSONResponse(body)

    splitter = (
        ReasoningSplitter(tok.think_start_id, tok.think_end_id, thinking=parsed.enable_thinking)
        if parse_reasoning
        else None
    )
    generated_ids: list[int] = []

    def running_usage() -> dict[str, Any] | None:
        return (
            wire.running_usage(n_prompt, len(generated_ids), chat=True) if common.continuous_usage else None
        )

    def chunk(out: Output, first: bool, finishing_fingerprint: str | None) -> dict[str, Any] | None:
        start = len(generated_ids)
        generated_ids.extend(out.token_ids)
        delta = splitter.delta(out.token_ids, out.text) if splitter else {"content": out.text}
        if delta is not None and not parsed.include_reasoning:
            delta.pop("reasoning", None)
            if not delta:
                delta = None
        logprobs = None if logprobs_n is None else writer.chat(out.token_ids, start, logprobs_n)
        if delta is None:
            # vLLM still sends a chunk that carries logprobs or token ids, with an empty delta.
            if out.finish_reason is None and logprobs is None and not ids_back:
                return None
            delta = {}
        return wire.chat_chunk(
            request_id,
            created,
            model,
            delta,
            finish_reason=out.finish_reason,
            stop_reason=out.stop_reason,
            fingerprint=finishing_fingerprint,
            logprobs=logprobs,
            token_ids=list(out.token_ids) if ids_back else None,
            usage=running_usage(),
        )

    def usage(n_out: int) -> dict[str, Any]:
        reasoning_tokens = _reasoning_tokens(tok, generated_ids) if parse_reasoning else None
        return wire.usage_chunk(
            request_id,
            created,
            model,
            "chat.completion.chunk",
            n_prompt,
            n_out,
            fingerprint,
            reasoning_tokens,
            state.cached_tokens(stream),
        )

    # vLLM sends the role chunk when the first output arrives, not on accept.
    opening = [
        wire.chat_chunk(
            request_id,
            created,
            model,
            {"role": role, "content": ""},
            first=True,
            usage=running_usage(),
            prompt_token_ids=prompt_ids if common.return_token_ids else None,
            prompt_text=shown_prompt,
        )
    ]
    if echo:
        opening.append(
            wire.chat_chunk(request_id, created, model, {"content": echo}, echo=True, usage=running_usage())
        )
    return _sse_response(
        state,
        stream,
        fault,
        kind="chat",
        chunk=chunk,
        usage=usage if common.include_usage else None,
        opening=opening,
        virtual=_wants_virtual_time(request),
    )


# --- middleware and assembly -----------------------------------------------------------------------------


class _TwinMiddleware:
    """Time-scale header, API key check on /v1, uvicorn-style access log, vLLM error bodies."""

    def __init__(self, app: ASGIApp, state: TwinState) -> None:
        self.app = app
        self.state = state
        self.scale = f"{state.time_scale:g}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        client = scope.get("client") or ("-", 0)
        query = scope.get("query_string", b"").decode()
        target = f"{path}?{query}" if query else path

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                # vLLM's CORS middleware adds "vary: Origin" to every response.
                extra = [(b"vary", b"Origin"), (TIME_SCALE_HEADER.encode(), self.scale)]
                message["headers"] = [*message["headers"], *extra]
                status = message["status"]
                self.state.log.access(
                    f"{client[0]}:{client[1]}", scope["method"], target, status, HTTPStatus(status).phrase
                )
            await send(message)

        key = self.state.api_key
        if key is not None and path.startswith("/v1") and scope["method"] != "OPTIONS":
            headers = dict(scope["headers"])
            if headers.get(b"authorization", b"").decode("latin-1") != f"Bearer {key}":
                await JSONResponse({"error": "Unauthorized"}, status_code=401)(scope, receive, send_wrapper)
                return
        await self.app(scope, receive, send_wrapper)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc)


async def _engine_dead(request: Request, exc: Exception) -> Response:
    # vLLM's create_error_response of an EngineDeadError: a plain Exception, hence InternalServerError.
    return JSONResponse(engine_dead_body(), status_code=HTTPStatus.INTERNAL_SERVER_ERROR)


async def _internal_error(request: Request, exc: Exception) -> Response:
    err = ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}", "InternalServerError")
    return _error(err)


async def _http_error(request: Request, exc: Exception) -> Response:
    # FastAPI's shape for routing errors: {"detail": "Not Found"}.
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


class GroundTruth:
    """The twin's own record of each finished request, in simulated seconds: what a client should measure.

    Served at ``GET /gx10/requests`` (a path of the twin's own; vLLM has none) so that benchmarks can
    check our client's figures against what the twin programmed.
    """

    def __init__(self, keep: int = 4096) -> None:
        self.finished: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)

    def on_step(self, stats: StepStats) -> None:
        """Keep every request finished in this step."""
        for done in stats.finished:
            self.finished.append(
                {
                    "id": done.request_id,
                    "ttft_s": done.queued_s + done.prefill_s,
                    "duration_s": done.e2e_s,
                    "decode_s": done.decode_s,
                    "prompt_tokens": done.num_prompt_tokens,
                    "completion_tokens": done.num_generation_tokens,
                    "finish_reason": done.finish_reason,
                }
            )


async def ground_truth(request: Request) -> Response:
    """``GET /gx10/requests``: the twin's record of finished requests (twin only)."""
    return JSONResponse({"requests": list(_state(request).ground_truth.finished)})


def _route(path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str]) -> Route:
    # Starlette answers HEAD for every GET route; FastAPI (and so vLLM) answers 405.
    route = Route(path, endpoint, methods=methods)
    if route.methods is not None and "HEAD" not in methods:
        route.methods.discard("HEAD")
    return route


def create_app(state: TwinState) -> Starlette:
    """The ASGI app; the engine and the periodic stats log run for the app's lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.engine.start()
        state.injector.start()
        ticker = asyncio.create_task(_stat_ticker(state))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await state.engine.stop()

    Handler = Callable[[Request], Awaitable[Response]]
    routes: list[tuple[str, Handler, list[str]]] = [
        ("/health", health, ["GET"]),
        ("/ping", health, ["GET", "POST"]),
        ("/version", version, ["GET"]),
        ("/load", load, ["GET"]),
        ("/metrics", metrics, ["GET"]),
        ("/gx10/requests", ground_truth, ["GET"]),
        ("/v1/models", models, ["GET"]),
        ("/tokenize", tokenize, ["POST"]),
        ("/detokenize", detokenize, ["POST"]),
        ("/v1/completions", completions, ["POST"]),
        ("/v1/chat/completions", chat_completions, ["POST"]),
    ]
    handlers: Mapping[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ApiError: _api_error,
        EngineDeadError: _engine_dead,
        HTTPException: _http_error,
        Exception: _internal_error,
    }
    app = Starlette(
        routes=[_route(path, fn, methods) for path, fn, methods in routes],
        exception_handlers=dict(handlers),
        lifespan=lifespan,
    )
    app.state.twin = state
    app.add_middleware(_TwinMiddleware, state=state)
    return app


def route_table(app: Starlette) -> list[tuple[str, str]]:
    """(path, "GET, POST") for each route, for the start-up log."""
    table: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, Route):
            methods = sorted((route.methods or set()) - {"HEAD"})
            table.extend((route.path, method) for method in methods)
    return table


async def _stat_ticker(state: TwinState) -> None:
    """Every ``log_interval_s`` of simulated time, print the throughput (and SpecDecoding) lines."""
    interval_s = state.profile.twin.log_interval_s
    while not state.engine.dead:  # the stat logger lives in the engine's output handler, which died
        await asyncio.sleep(interval_s / state.time_scale)
        state.stat_log.log(interval_s)
