"""A scripted OpenAI-compatible server: real HTTP, the real wire format, so langchain-openai
and the openai client run for real. Embeddings are deterministic hashes; chat completions
follow a script of replies, or by default behave like a diligent agent (search the question,
then answer from the first passage, citing it)."""

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from tests.helpers import LoopbackServer, send_json

_PASSAGE = re.compile(r'<passage ref="(\d+)"[^>]*>\n(.*?)\n</passage>', re.DOTALL)


@dataclass
class Timing:
    start: float
    first_token: float = 0.0  # when the first answer word was sent (streamed answers only)
    end: float = 0.0


@dataclass
class Reply:
    """One scripted answer to a chat completion request."""

    content: str = ""
    # (name, arguments): an object, or a string sent as it is (a model's malformed JSON)
    tool_calls: Sequence[tuple[str, Mapping[str, Any] | str]] = field(default_factory=list)
    failure: Literal["status_500", "garbage", "hang"] | None = None
    gate: threading.Event | None = None  # when set: stream the first word, then wait for the gate


def agent_reply(messages: list[dict[str, Any]]) -> Reply:
    """What a well-behaved model does: search for the question, then answer citing [1]."""
    last = messages[-1]
    if last["role"] == "tool":
        found = _PASSAGE.search(last.get("content") or "")
        if found is None:
            return Reply("I could not find this in your documents.")
        excerpt = " ".join(found.group(2).split()[:12])
        return Reply(f"According to your documents, {excerpt} [{found.group(1)}].")
    return Reply(tool_calls=[("search_documents", {"query": str(last.get("content")), "k": 4})])


class ScriptedOpenAI(LoopbackServer):
    """Speaks `/v1/embeddings` and `/v1/chat/completions` (streamed or not, with tool calls)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: deque[Reply] = deque()
        self.release = threading.Event()  # lets "hang" replies end (set at shutdown)
        self.hanging = threading.Event()  # set once a "hang" reply has begun
        self.gated = threading.Event()  # set once a gated reply waits at its gate
        self.timings: list[Timing] = []  # per chat request, on this process's monotonic clock
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # connections kept alive, as OpenAI's and local servers keep them
            disable_nagle_algorithm = True  # else each kept-alive exchange waits out a delayed ACK (40 ms)

            def do_GET(self) -> None:
                with owner.lock:  # `/timings`: for a benchmark running this server in another process
                    send_json(self, [vars(t) for t in owner.timings])

            def do_POST(self) -> None:
                received = time.monotonic()  # a model's time includes reading the request
                raw = self.rfile.read(int(self.headers["content-length"]))
                if not raw:  # the client went away mid-request (`make soak` kills the service)
                    self.close_connection = True
                    return
                body = json.loads(raw)
                with owner.lock:
                    owner.requests.append({"path": self.path, "auth": self.headers.get("authorization"), **body})
                if self.path.endswith("/embeddings"):
                    owner._embeddings(self, body)
                else:
                    owner._chat(self, body, received)

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(Handler)
        self.base_url = f"{self.url}/v1"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def stop(self) -> None:
        self.release.set()

    def _embeddings(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": deterministic_vector(str(text), body["dimensions"])}
            for i, text in enumerate(inputs)
        ]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        send_json(handler, {"object": "list", "data": data, "model": body["model"], "usage": usage})

    def _chat(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], received: float) -> None:
        timing = Timing(start=received)
        try:
            self._answer(handler, body, timing)
        finally:
            timing.end = time.monotonic()
            with self.lock:
                self.timings.append(timing)

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], timing: Timing) -> None:
        with self.lock:
            reply = self.script.popleft() if self.script else agent_reply(body["messages"])
        if reply.failure == "hang":
            self.hanging.set()
            self.release.wait()
            handler.close_connection = True  # no response: the client sees the connection end
            return
        if reply.failure == "status_500":
            send_json(handler, {"error": {"message": "scripted failure", "type": "server_error"}}, status=500)
            return
        usage = {
            "prompt_tokens": sum(len(json.dumps(m)) for m in body["messages"]) // 4,
            "completion_tokens": len(reply.content) // 4 + 5 * len(reply.tool_calls) + 1,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if body.get("stream"):
            self._stream(handler, body, reply, usage, timing)
        else:
            send_json(handler, _completion(body["model"], reply, usage))

    def _stream(
        self, handler: BaseHTTPRequestHandler, body: dict[str, Any], reply: Reply, usage: dict[str, int], timing: Timing
    ) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()

        def send(payload: str) -> None:
            event = f"data: {payload}\n\n".encode()
            handler.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            handler.wfile.flush()

        try:
            self._stream_events(send, body, reply, usage, timing)
        finally:
            handler.wfile.write(b"0\r\n\r\n")  # the end of the chunked body

    def _stream_events(
        self, send: Callable[[str], None], body: dict[str, Any], reply: Reply, usage: dict[str, int], timing: Timing
    ) -> None:
        if reply.failure == "garbage":
            send('{"id": "chatcmpl-1", "choices": [{"delta": {"content": "Par')
            send("this is not json at all")
            return
        model = body["model"]
        send(_chunk(model, {"role": "assistant", "content": ""}))
        for index, (name, arguments) in enumerate(reply.tool_calls):
            opening = {"index": index, "id": f"call_{index}_{len(self.requests)}", "type": "function"}
            send(_chunk(model, {"tool_calls": [opening | {"function": {"name": name, "arguments": ""}}]}))
            send(_chunk(model, {"tool_calls": [{"index": index, "function": {"arguments": _json(arguments)}}]}))
        for n, piece in enumerate(re.findall(r"\S+\s*", reply.content)):
            timing.first_token = timing.first_token or time.monotonic()
            send(_chunk(model, {"content": piece}))
            if n == 0 and reply.gate is not None:
                self.gated.set()
                reply.gate.wait(30)
        send(_chunk(model, {}, finish_reason="tool_calls" if reply.tool_calls else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            send(
                json.dumps(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        send("[DONE]")


def _json(arguments: Mapping[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    return json.dumps(
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [choice]}
    )


def _completion(model: str, reply: Reply, usage: dict[str, int]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": _json(args)}}
            for i, (name, args) in enumerate(reply.tool_calls)
        ]
    finish = "tool_calls" if reply.tool_calls else "stop"
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }


def deterministic_vector(text: str, dimensions: int) -> list[float]:
    raw = [b - 128 for b in hashlib.shake_256(text.encode()).digest(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


if __name__ == "__main__":
    # A standalone server (`python -m tests.scripted_openai`), so that a benchmark's
    # measurements do not share a process, and its interpreter lock, with the model.
    import sys

    server = ScriptedOpenAI()
    with server.running():
        print(server.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
