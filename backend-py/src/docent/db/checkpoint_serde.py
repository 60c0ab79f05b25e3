"""The checkpointer's serializer, remembering the message lists it has decoded.

Loading a thread decodes its stored messages back into LangChain objects: about 3 ms for a
hundred messages, on every turn, for the same bytes each time (the latest snapshot of the
conversation, and the turns written since). This serializer keeps the decoded lists of
recent loads, keyed by the stored bytes themselves, so a hit can never be stale: equal
bytes decode to equal messages, whichever thread, replica or checkpoint they came from.

A hit hands out a new list holding the same message objects. Nothing in Docent or
LangGraph changes a message once it is stored (the reducer builds new lists, and a node
edits only the message it has just made), so sharing them is safe and costs no copy.
Only message lists are kept; everything else decodes as usual.
"""

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.serde.types import _DeltaSnapshot

SMALLEST_BYTES = 1024  # below this, decoding costs little more than looking up


class RememberingSerializer(JsonPlusSerializer):
    """LangGraph's serializer, with the decoded message lists of up to `budget_bytes` of
    stored data kept (least recently used first out); 0 keeps none."""

    def __init__(self, *, budget_bytes: int) -> None:
        super().__init__()
        self._budget = budget_bytes
        self._held = 0
        self._decoded: OrderedDict[tuple[str, bytes], list[BaseMessage] | _DeltaSnapshot] = OrderedDict()

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        kind, raw = data
        if len(raw) < SMALLEST_BYTES or len(raw) > self._budget:
            return super().loads_typed(data)
        key = (kind, bytes(raw))
        kept = self._decoded.get(key)
        if kept is None:
            value = super().loads_typed(data)
            if not _message_list(value):
                return value
            kept = self._keep(key, value)
        else:
            self._decoded.move_to_end(key)
        return _fresh(kept)

    def with_msgpack_allowlist(self, extra_allowlist: Iterable[tuple[str, ...] | type]) -> JsonPlusSerializer:
        clone = super().with_msgpack_allowlist(extra_allowlist)
        if isinstance(clone, RememberingSerializer) and clone is not self:
            # Decoded under other rules: what one allowed, the other may refuse.
            clone._held, clone._decoded = 0, OrderedDict()
        return clone

    def _keep(
        self, key: tuple[str, bytes], value: list[BaseMessage] | _DeltaSnapshot
    ) -> list[BaseMessage] | _DeltaSnapshot:
        self._decoded[key] = value
        self._held += len(key[1])
        while self._held > self._budget:
            (_, oldest), _ = self._decoded.popitem(last=False)
            self._held -= len(oldest)
        return value


def _message_list(value: Any) -> bool:
    items = value.value if isinstance(value, _DeltaSnapshot) else value
    return isinstance(items, list) and all(isinstance(item, BaseMessage) for item in items)


def _fresh(value: list[BaseMessage] | _DeltaSnapshot) -> Any:
    """A new list (in a new snapshot) of the same messages: a caller may append to it."""
    if isinstance(value, _DeltaSnapshot):
        return _DeltaSnapshot(list(value.value))
    return list(value)
