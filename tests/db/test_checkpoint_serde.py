"""The checkpointer's serializer keeps decoded message lists by their stored bytes."""

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.serde import _msgpack
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from docent.db.checkpoint_serde import SMALLEST_BYTES, RememberingSerializer
from tests.agent import new_thread, run_body, upload_manual
from tests.conftest import InProcess


def _turn(n: int) -> list[BaseMessage]:
    return [
        HumanMessage(f"question {n}", id=f"h{n}"),
        ToolMessage("passage " * 300, tool_call_id=f"call_{n}", id=f"t{n}"),
        AIMessage(f"answer {n} [1]", id=f"a{n}"),
    ]


def _stored(value: Any) -> tuple[str, bytes]:
    stored = JsonPlusSerializer().dumps_typed(value)
    assert len(stored[1]) >= SMALLEST_BYTES
    return stored


def test_a_message_list_is_decoded_once_and_handed_out_as_a_new_list() -> None:
    serde = RememberingSerializer(budget_bytes=1 << 20)
    stored = _stored(_turn(1))
    first, second = serde.loads_typed(stored), serde.loads_typed(stored)
    assert first == second == _turn(1)
    assert first is not second  # a caller may append to its own list
    assert all(a is b for a, b in zip(first, second, strict=True))  # the messages are shared
    first.append(HumanMessage("appended"))
    assert serde.loads_typed(stored) == _turn(1)


def test_a_snapshot_of_the_conversation_is_kept_as_well() -> None:
    serde = RememberingSerializer(budget_bytes=1 << 20)
    stored = _stored(_DeltaSnapshot(_turn(1) + _turn(2)))
    first, second = serde.loads_typed(stored), serde.loads_typed(stored)
    assert isinstance(second, _DeltaSnapshot)
    assert second.value == _turn(1) + _turn(2)
    assert first.value is not second.value
    assert all(a is b for a, b in zip(first.value, second.value, strict=True))


def test_other_values_and_small_lists_decode_afresh_each_time() -> None:
    serde = RememberingSerializer(budget_bytes=1 << 20)
    other = _stored({"chunk_ids": [str(n) * 40 for n in range(100)]})
    assert serde.loads_typed(other) is not serde.loads_typed(other)
    small = JsonPlusSerializer().dumps_typed([HumanMessage("hi", id="h")])
    assert len(small[1]) < SMALLEST_BYTES
    assert serde.loads_typed(small)[0] is not serde.loads_typed(small)[0]


def test_the_least_recently_used_lists_go_once_the_budget_is_spent() -> None:
    one, two = _stored(_turn(1)), _stored(_turn(2))
    serde = RememberingSerializer(budget_bytes=len(one[1]) + len(two[1]) // 2)  # room for one
    kept = serde.loads_typed(one)[0]
    assert serde.loads_typed(one)[0] is kept
    serde.loads_typed(two)
    assert serde.loads_typed(one)[0] is not kept
    assert (
        RememberingSerializer(budget_bytes=0).loads_typed(one)[0]
        is not RememberingSerializer(budget_bytes=0).loads_typed(one)[0]
    )


def test_a_serializer_with_other_rules_keeps_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_msgpack, "STRICT_MSGPACK_ENABLED", True)  # LANGGRAPH_STRICT_MSGPACK=true
    serde = RememberingSerializer(budget_bytes=1 << 20)
    stored = _stored(_turn(1))
    kept = serde.loads_typed(stored)[0]
    stricter = serde.with_msgpack_allowlist([("tests.db.test_checkpoint_serde", "Unrelated")])
    assert stricter is not serde
    assert stricter.loads_typed(stored)[0] is not kept
    assert serde.loads_typed(stored)[0] is kept


@pytest.mark.parametrize("kept", [True, pytest.param(False, marks=pytest.mark.settings(checkpoint_cache_mb=0))])
async def test_reading_a_thread_again_decodes_none_of_its_messages(
    agent: InProcess, user: tuple[Any, dict[str, str]], monkeypatch: pytest.MonkeyPatch, kept: bool
) -> None:
    _, headers = user
    await upload_manual(agent, headers)  # so that each turn's search result is a few kB
    thread_id = await new_thread(agent.http, headers)
    for n in range(3):
        response = await agent.http.post(
            f"/threads/{thread_id}/runs/wait", headers=headers, json=run_body(f"question {n}")
        )
        assert response.status_code == 200
    first = (await agent.http.get(f"/threads/{thread_id}/state", headers=headers)).json()
    decoded: list[int] = []
    loads_typed = JsonPlusSerializer.loads_typed

    def counted(self: JsonPlusSerializer, data: tuple[str, bytes]) -> Any:
        if len(data[1]) >= SMALLEST_BYTES:
            decoded.append(len(data[1]))
        return loads_typed(self, data)

    monkeypatch.setattr(JsonPlusSerializer, "loads_typed", counted)
    second = (await agent.http.get(f"/threads/{thread_id}/state", headers=headers)).json()
    assert first == second
    assert len(first["values"]["messages"]) == 3 * 4  # question, first search (call and result), answer
    if kept:
        assert decoded == [], f"messages decoded again: {decoded}"
    else:  # CHECKPOINT_CACHE_MB=0: every read decodes them
        assert len(decoded) >= 3
