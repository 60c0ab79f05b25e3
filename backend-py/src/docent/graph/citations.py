"""Citations: the [n] references an answer makes, kept only when this turn retrieved [n]."""

import re
from collections.abc import Sequence

from langchain_core.messages import BaseMessage, ToolMessage

from docent.graph.state import Citation, Retrieval
from docent.graph.tools import passages_in

_REFERENCE = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_DEFUSED = r"[ \1]"
SNIPPET_CHARS = 300


def cited_refs(answer: str) -> list[int]:
    """The references in order of first appearance: [2], [1, 3] and [1][3] alike."""
    refs = (int(n) for group in _REFERENCE.findall(answer) for n in group.split(","))
    return list(dict.fromkeys(refs))


def defuse(quoted: str) -> str:
    """`quoted` with whatever reads as a reference opened by a space (`a[1]` → `a[ 1]`), so
    that a document's own brackets, quoted in an answer, cite nothing."""
    return _REFERENCE.sub(_DEFUSED, quoted)


def resolve(answer: str, turn: Sequence[BaseMessage], retrieval: Retrieval) -> list[Citation]:
    """Citations for the references that name a passage retrieved in this turn; others are
    dropped. Each is read from the tool results of the turn, so it quotes exactly what the
    model was shown, and no query is needed."""
    chunk_ids = retrieval["chunk_ids"]
    shown = {p.ref: p for m in turn if isinstance(m, ToolMessage) for p in passages_in(m.text)}
    return [
        Citation(
            ref=ref,
            chunk_id=chunk_ids[ref - 1],
            document_id=passage.document_id,
            title=passage.title,
            snippet=shorten(passage.content, SNIPPET_CHARS),
        )
        for ref in cited_refs(answer)
        if 1 <= ref <= len(chunk_ids) and (passage := shown.get(ref)) is not None
    ]


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut at a word boundary to at most `limit` characters (… marks a cut)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rsplit(" ", 1)[0] + "…"
