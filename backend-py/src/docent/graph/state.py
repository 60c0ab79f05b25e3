"""The agent's state: the conversation, this turn's citations, and what this turn retrieved."""

from collections.abc import Sequence
from typing import Annotated, Any, TypedDict, cast

from langchain_core.messages import AnyMessage
from langgraph.channels import DeltaChannel
from langgraph.graph.message import add_messages

# A full copy of the list every SNAPSHOT_EVERY message writes (about five turns): loading a
# thread then replays at most that many writes, for a little more storage.
SNAPSHOT_EVERY = 20


class Citation(TypedDict):
    ref: int  # the [n] the answer uses
    chunk_id: str
    document_id: str
    title: str
    snippet: str


class Retrieval(TypedDict):
    """This turn's retrieval, by id only: the text is in the database, not the checkpoint."""

    queries: list[str]
    chunk_ids: list[str]  # passage [n] is chunk_ids[n - 1]
    mode: str
    rounds: int


def _append_messages(messages: list[AnyMessage], writes: Sequence[list[AnyMessage]]) -> list[AnyMessage]:
    for write in writes:
        messages = cast(list[AnyMessage], add_messages(cast(Any, messages), cast(Any, write)))
    return messages


class AgentState(TypedDict, total=False):
    # A delta channel: each checkpoint stores the step's new messages, not the whole list
    # again, so a long conversation's storage grows linearly rather than quadratically.
    messages: Annotated[list[AnyMessage], DeltaChannel(_append_messages, snapshot_frequency=SNAPSHOT_EVERY)]
    citations: list[Citation]
    retrieval: Retrieval


def empty_retrieval(mode: str) -> Retrieval:
    return Retrieval(queries=[], chunk_ids=[], mode=mode, rounds=0)
