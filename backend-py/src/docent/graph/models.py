"""The chat-model factory: an OpenAI-compatible model when one is configured, else extractive."""

import hashlib
import json
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from openai import DefaultAioHttpClient
from pydantic import SecretStr

from docent.graph.citations import defuse
from docent.graph.tools import STILL_PROCESSING, QuotedPassage, passages_in
from docent.settings import Settings

EXTRACTIVE_LABEL = (
    "Extractive answer (no language model is configured): the passages of your documents that best match the question."
)
_EXCERPT_WORDS = 60


def create_chat_model(settings: Settings, *, http_client: DefaultAioHttpClient | None = None) -> BaseChatModel:
    """OpenAI, or any OpenAI-compatible server at OPENAI_BASE_URL; with neither, extractive.
    `http_client` carries the model's requests (the service passes `model_http_client()`,
    and closes it); without it, langchain-openai's shared default."""
    if not settings.llm_configured:
        return ExtractiveChatModel()
    return WireChatOpenAI(
        model=settings.chat_model,
        temperature=settings.chat_temperature,
        max_completion_tokens=settings.chat_max_tokens,
        timeout=settings.chat_timeout_seconds,
        max_retries=settings.chat_max_retries,
        # Local servers (Ollama, vLLM, llama.cpp) take any key; the client insists on one.
        api_key=settings.openai_api_key or SecretStr("not-needed"),
        base_url=settings.openai_base_url,
        stream_usage=True,
        http_async_client=http_client,
    )


def model_http_client(settings: Settings) -> DefaultAioHttpClient:
    """The OpenAI client's HTTP client with aiohttp underneath (the SDK's `aiohttp` extra):
    its C parser takes about 1.2 ms less CPU per model call than the default pure-Python
    HTTP/1.1 stack, time a turn spends on the event loop. Proxies from the environment still
    apply. Its connections open on first use, in the running event loop; close it there."""
    return DefaultAioHttpClient(timeout=settings.chat_timeout_seconds)


class WireChatOpenAI(ChatOpenAI):
    """`ChatOpenAI` that hands the OpenAI client its messages and tools already in wire form.

    Before sending, the client walks every message against its TypedDict unions (about
    10 ms a call here for a 10-exchange history, the largest part of a turn's own time).
    langchain-openai has already built that JSON, so it travels as `extra_body`, which the
    client merges into the request as is, over the empty `messages` it is given."""

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        if "messages" in payload:  # Chat Completions; the Responses API has `input` instead
            wire = {key: payload.pop(key) for key in ("messages", "tools") if key in payload}
            payload["extra_body"] = {**(payload.get("extra_body") or {}), **wire}
            payload["messages"] = []
        return payload


class ExtractiveChatModel(BaseChatModel):
    """A deterministic stand-in for a language model, run by the same graph: it answers with
    the best passages of the turn's search quoted and cited, searching for the question
    itself when the graph has not (`SEARCH_FIRST=false`)."""

    passages: int = 3

    @property
    def _llm_type(self) -> str:
        return "extractive"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        return self  # it knows its one tool

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._respond(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in _chunks(self._respond(messages)):
            if run_manager:
                run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in _chunks(self._respond(messages)):
            if run_manager:
                await run_manager.on_llm_new_token(str(chunk.message.content), chunk=chunk)
            yield chunk

    def _respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        question_at = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
        turn = messages[question_at + 1 :]
        if question_at < 0:
            return AIMessage(EXTRACTIVE_LABEL + "\n\nAsk a question about your documents.")
        results = [m for m in turn if isinstance(m, ToolMessage)]
        if not results:
            query = messages[question_at].text[:500]
            call_id = "call_" + hashlib.sha256(query.encode()).hexdigest()[:16]
            return AIMessage(
                "", tool_calls=[{"name": "search_documents", "args": {"query": query, "k": 5}, "id": call_id}]
            )
        found = [passage for m in results for passage in passages_in(m.text)][: self.passages]
        if not found:  # the search's note on documents not yet searchable, if it made one
            notes = [line for m in results for line in m.text.splitlines() if line.endswith(STILL_PROCESSING)]
            answer = " ".join(["Nothing in your documents matches this question.", *notes[-1:]])
            return AIMessage(f"{EXTRACTIVE_LABEL}\n\n{answer}")
        return AIMessage(EXTRACTIVE_LABEL + "\n\n" + "\n\n".join(_quote(passage) for passage in found))


def _quote(passage: QuotedPassage) -> str:
    words = passage.content.split()
    excerpt = defuse(" ".join(words[:_EXCERPT_WORDS])) + (" …" if len(words) > _EXCERPT_WORDS else "")
    source = defuse(" › ".join(part for part in (passage.title, passage.section) if part))
    return f"> {excerpt}\n\n— {source} [{passage.ref}]"


def _chunks(message: AIMessage) -> Iterator[ChatGenerationChunk]:
    """The message as a model would stream it: tool calls whole, text a few words at a time."""
    if message.tool_calls:
        call = message.tool_calls[0]
        tool_chunk = {"name": call["name"], "args": json.dumps(call["args"]), "id": call["id"], "index": 0}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[tool_chunk]))
        return
    pieces = re.findall(r"\S+\s*|\s+", message.text)
    for start in range(0, len(pieces), 4):
        yield ChatGenerationChunk(message=AIMessageChunk(content="".join(pieces[start : start + 4])))
    yield ChatGenerationChunk(message=AIMessageChunk(content="", chunk_position="last"))
