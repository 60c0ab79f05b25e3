"""Search the caller's chunks: vector (HNSW, cosine), keyword (full text) or both, fused.

Every query runs inside a user transaction: row-level security is what limits it to the
caller's chunks, so no statement here filters by user. A caller with few chunks (under
EXACT_SEARCH_LIMIT) gets an exact scan of their own rows, found through the user_id
index: a few milliseconds, and perfect recall, where an HNSW walk over everyone's vectors
would find few of theirs. Above that, HNSW with `hnsw.iterative_scan`, which keeps
scanning until k rows survive the RLS filter.

Keyword search ORs the query's lexemes (an AND of every word almost never matches a
question) and scores chunks by the BM25 inverse document frequency of the lexemes they
hold (`ts_rank_cd` has none, so common words would outweigh rare ones). Hybrid mode fuses
the two ranked lists by weighted reciprocal rank, favouring the vector list.

langchain-postgres' PGVectorStore is not used for this: it opens its own connections and
owns its table layout, so its queries cannot run inside the caller's transaction (where the
RLS claims are set), and it cannot join full text and vectors in one statement.
"""

from collections.abc import Awaitable
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import TextClause, text
from sqlmodel.ext.asyncio.session import AsyncSession

from docent.db.chunks import vector_literal

Mode = Literal["hybrid", "vector", "keyword"]
CANDIDATES = 50  # per list, before fusion
EXACT_SEARCH_LIMIT = 10_000  # chunks; below this an exact scan beats the HNSW index
RRF_K = 60
VECTOR_WEIGHT = 1.0
KEYWORD_WEIGHT = 0.5

_VECTOR_HNSW = """
    vector_hits as (
        select id, row_number() over (order by distance) as rank from (
            select id, embedding <=> cast(:embedding as vector) as distance from public.chunks
            where embedding_model = :model order by distance limit :candidates
        ) nearest
    )"""
# `offset 0` fences the inner query so the planner cannot turn it into an HNSW scan.
_VECTOR_EXACT = """
    vector_hits as (
        select id, row_number() over (order by distance) as rank from (
            select id, embedding <=> cast(:embedding as vector) as distance from (
                select id, embedding from public.chunks where embedding_model = :model offset 0
            ) own order by distance limit :candidates
        ) nearest
    )"""
# Each query lexeme weighs its BM25 inverse document frequency among the caller's chunks,
# 1.5x where it appears in the title or headings (weights A and B). One GIN scan fetches
# every chunk matching any lexeme; a lexeme's document frequency is then counted within
# that set (exact: a chunk holding the lexeme is in it). In a library of 1000+ chunks,
# lexemes in over a third of them say little and are left out of the score, like stop words. (pg_stats
# cannot prune them earlier: PostgreSQL hides statistics of RLS tables from RLS'd roles,
# rightly, as common values would leak other users' words.)
_KEYWORD = """
    terms as materialized (
        select lexeme, cast(quote_literal(lexeme) as tsquery) as anywhere,
               cast(quote_literal(lexeme) || '\\:AB' as tsquery) as in_headings
        from unnest(to_tsvector('english', :query))
    ),
    matches as materialized (
        select c.id, t.lexeme, c.search_vector @@ t.in_headings as in_headings
        from public.chunks c join terms t on c.search_vector @@ t.anywhere
        where c.search_vector @@ (select cast(string_agg(quote_literal(lexeme), ' | ') as tsquery) from terms)
    ),
    weights as materialized (
        select lexeme, ln(1 + (cast(:owned as float8) - count(*) + 0.5) / (count(*) + 0.5)) as idf
        from matches group by lexeme having :owned < 1000 or count(*) <= :owned / 3
    ),
    keyword_hits as (
        select id, row_number() over (order by score desc, id) as rank from (
            select m.id, sum(w.idf * case when m.in_headings then 1.5 else 1.0 end) as score
            from matches m join weights w using (lexeme)
            group by m.id order by score desc limit :candidates
        ) matching
    )"""
_FUSED = {
    "vector": "fused as (select id, 1.0 / (:rrf_k + rank) as score from vector_hits)",
    "keyword": "fused as (select id, 1.0 / (:rrf_k + rank) as score from keyword_hits)",
    "hybrid": """fused as (
        select coalesce(v.id, k.id) as id,
               coalesce(:vector_weight / (:rrf_k + v.rank), 0) + coalesce(:keyword_weight / (:rrf_k + k.rank), 0)
               as score
        from vector_hits v full join keyword_hits k on k.id = v.id
    )""",
}
# The best k are picked before the join: joined first, the planner rescans the fused list
# for every chunk the caller owns.
_RESULTS = """,
    best as materialized (select id, score from fused order by score desc, id limit :k)
    select c.id as chunk_id, c.document_id, d.filename, c.title, c.heading_path, c.content, best.score
    from best join public.chunks c on c.id = best.id join public.documents d on d.id = c.document_id
    order by best.score desc, c.id"""


def _statement(mode: Mode, vector: str) -> TextClause:
    parts = [part for part, used in ((vector, mode != "keyword"), (_KEYWORD, mode != "vector")) if used]
    return text("with" + ",".join(parts) + ", " + _FUSED[mode] + _RESULTS)


_STATEMENTS = {
    (mode, exact): _statement(mode, _VECTOR_EXACT if exact else _VECTOR_HNSW)
    for mode in ("vector", "keyword", "hybrid")
    for exact in (True, False)
}
# One round trip: the HNSW scan settings, and how many chunks the caller owns (RLS-scoped).
_PREPARE = text(
    "select set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', :ef_search, true),"
    " (select coalesce(sum(chunk_count), 0) from public.documents) as owned"
)


class SearchHit(BaseModel):
    """One retrieved chunk: what `POST /search` returns and what the agent cites."""

    model_config = ConfigDict(frozen=True)

    chunk_id: UUID
    document_id: UUID
    filename: str
    title: str
    heading_path: list[str]
    content: str
    score: float


async def search_chunks(
    session: AsyncSession,
    *,
    query: str,
    embedding: list[float] | Awaitable[list[float]] | None,
    model: str,
    k: int,
    mode: Mode = "hybrid",
) -> list[SearchHit]:
    # Fusion needs a deep list from each side; a vector search alone needs only k.
    candidates = k if mode == "vector" else max(CANDIDATES, k)
    connection = await session.connection()
    ef_search = str(max(40, 2 * candidates))  # the HNSW beam: pgvector's default 40, wider for more rows
    owned = (await connection.execute(_PREPARE, {"ef_search": ef_search})).one().owned
    if embedding is not None and not isinstance(embedding, list):
        embedding = await embedding  # only now: the query may embed while the statement above runs
    parameters = {
        "query": query,
        "embedding": vector_literal(embedding) if embedding is not None else None,
        "model": model,
        "k": k,
        "candidates": candidates,
        "rrf_k": RRF_K,
        "vector_weight": VECTOR_WEIGHT,
        "keyword_weight": KEYWORD_WEIGHT,
        "owned": owned,
    }
    rows = await connection.execute(_STATEMENTS[mode, owned < EXACT_SEARCH_LIMIT], parameters)
    return [SearchHit.model_validate(dict(row._mapping)) for row in rows]
