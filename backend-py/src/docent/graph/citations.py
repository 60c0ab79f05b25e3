"""Citations: the [n] references an answer makes, kept only when this turn retrieved [n]."""

import re
from uuid import UUID

from docent.db.chunks import chunks_by_ids
from docent.db.session import acting_as, user_transaction
from docent.graph.context import RunContext
from docent.graph.state import Citation, Retrieval

_REFERENCE = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
SNIPPET_CHARS = 300


def cited_refs(answer: str) -> list[int]:
    """The references in order of first appearance: [2], [1, 3] and [1][3] alike."""
    refs = (int(n) for group in _REFERENCE.findall(answer) for n in group.split(","))
    return list(dict.fromkeys(refs))


async def resolve(answer: str, retrieval: Retrieval, context: RunContext) -> list[Citation]:
    """Citations for the references that name a passage retrieved in this turn; others are dropped."""
    chunk_ids = retrieval["chunk_ids"]
    wanted = {ref: chunk_ids[ref - 1] for ref in cited_refs(answer) if 1 <= ref <= len(chunk_ids)}
    if not wanted:
        return []
    async with user_transaction(context.sessions, acting_as(context.user_id)) as session:
        chunks = {str(c.id): c for c in await chunks_by_ids(session, chunk_ids=[UUID(i) for i in wanted.values()])}
    return [
        Citation(
            ref=ref,
            chunk_id=chunk_id,
            document_id=str(chunk.document_id),
            title=chunk.title,
            snippet=shorten(chunk.content, SNIPPET_CHARS),
        )
        for ref, chunk_id in wanted.items()
        if (chunk := chunks.get(chunk_id)) is not None  # a document deleted mid-turn
    ]


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters (… marks a cut)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rsplit(" ", 1)[0] + "…"
