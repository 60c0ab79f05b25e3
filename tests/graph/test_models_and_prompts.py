"""The chat-model factory, the extractive model on its own, and what the model is shown."""

import uuid
from datetime import UTC, datetime

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_openai import ChatOpenAI

from docent.graph import citations
from docent.graph.models import EXTRACTIVE_LABEL, ExtractiveChatModel, create_chat_model
from docent.graph.prompts import model_input
from docent.graph.state import Retrieval
from docent.runs.serialize import dumps
from docent.settings import Settings

PASSAGES = (
    'Search results. UNTRUSTED.\n<passage ref="1" title="Guide &amp; notes" section="Setup" document_id="d">\n'
    "Install the package, then run it.\n</passage>"
)


def test_the_factory_follows_the_settings() -> None:
    assert isinstance(create_chat_model(Settings()), ExtractiveChatModel)
    model = create_chat_model(
        Settings(openai_base_url="http://localhost:11434/v1", chat_model="llama3", chat_max_tokens=99)
    )
    assert isinstance(model, ChatOpenAI)
    assert (model.model_name, model.max_tokens, model.openai_api_base) == ("llama3", 99, "http://localhost:11434/v1")
    assert model.stream_usage is True


def test_the_extractive_model_searches_then_quotes_and_cites() -> None:
    model = ExtractiveChatModel()
    question = HumanMessage("How do I install it?")
    call = model.invoke([question])
    assert call.tool_calls[0]["name"] == "search_documents"
    assert call.tool_calls[0]["args"] == {"query": "How do I install it?", "k": 5}
    answer = model.invoke([question, call, ToolMessage(PASSAGES, tool_call_id=call.tool_calls[0]["id"])])
    assert answer.content == (
        EXTRACTIVE_LABEL + "\n\n> Install the package, then run it.\n\n— Guide & notes › Setup [1]"
    )
    streamed = "".join(
        str(chunk.content) for chunk in model.stream([question, call, ToolMessage(PASSAGES, tool_call_id="x")])
    )
    assert streamed == answer.content
    assert model.invoke([SystemMessage("no question")]).text.endswith("Ask a question about your documents.")


def test_an_extractive_answer_cites_its_passages_not_the_brackets_they_quote() -> None:
    shown = (
        "Search results. UNTRUSTED.\n"
        '<passage ref="1" title="Arrays [2]" section="" document_id="d">\nUse a[2] or b[3, 1].\n</passage>\n'
        '<passage ref="2" title="Other" section="" document_id="d">\nSee [1] later.\n</passage>\n'
        '<passage ref="3" title="Third" section="" document_id="d">\nNothing here.\n</passage>'
    )
    model = ExtractiveChatModel(passages=1)
    turn = [HumanMessage("arrays?"), ToolMessage(shown, tool_call_id="c")]
    answer = model.invoke(turn)
    assert "Use a[ 2] or b[ 3, 1]." in answer.text
    assert "Arrays [ 2] [1]" in answer.text
    retrieval = Retrieval(queries=["arrays?"], chunk_ids=["c1", "c2", "c3"], mode="hybrid", rounds=1)
    assert [c["ref"] for c in citations.resolve(answer.text, turn[1:], retrieval)] == [1]


def test_the_model_sees_recent_questions_and_answers_but_not_old_passages() -> None:
    history = []
    for n in range(5):
        history += [
            HumanMessage(f"q{n}"),
            AIMessage("", tool_calls=[{"name": "search_documents", "args": {}, "id": f"c{n}"}]),
            ToolMessage("passages", tool_call_id=f"c{n}"),
            AIMessage(f"a{n}"),
        ]
    current = [HumanMessage("now"), AIMessage("", tool_calls=[{"name": "list_documents", "args": {}, "id": "c"}])]
    shown = model_input([*history, *current], history_turns=2)
    assert [m.content for m in shown[1:]] == ["q3", "a3", "q4", "a4", "now", ""]
    assert isinstance(shown[0], SystemMessage)
    assert [m.content for m in model_input([*history, *current], history_turns=0)[1:]] == ["now", ""]


def test_graph_output_serializes_like_the_agent_server() -> None:
    when = datetime(2026, 11, 23, tzinfo=UTC)
    ident = uuid.UUID(int=1)
    encoded = dumps({"m": HumanMessage("hi", id="1"), "at": when, "id": ident, "set": {1}, "other": object})
    assert encoded.startswith('{"m":{"content":"hi"')
    assert '"at":"2026-11-23T00:00:00+00:00"' in encoded
    assert f'"id":"{ident}"' in encoded
    assert '"set":[1]' in encoded
    assert '"other":"<class \'object\'>"' in encoded
    # What orjson cannot encode falls back to the standard library, not to a 500.
    assert dumps({"n": 2**70, 1: "key"}) == '{"n":1180591620717411303424,"1":"key"}'
    assert dumps({"say": "é\nnext"}) == '{"say":"é\\nnext"}'  # one line, UTF-8 as is
