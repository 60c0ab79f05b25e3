"""The embedding models: the local ONNX model, and OpenAI's API asked for 384 dimensions."""

import math

import numpy as np

from docent.retrieval.embeddings import DIMENSIONS, LOCAL_MODEL_NAME, Embedder, create_embedder
from docent.settings import Settings
from tests.scripted_openai import ScriptedOpenAI


async def test_the_local_model_embeds_meaning(embedder: Embedder) -> None:
    assert embedder.name == LOCAL_MODEL_NAME
    anchor, paraphrase, unrelated = await embedder.embed_documents(
        ["How do I reset my password?", "I forgot my password and need a new one", "The cat sleeps on the sofa"]
    )
    assert len(anchor) == DIMENSIONS
    assert math.isclose(float(np.linalg.norm(anchor)), 1.0, rel_tol=1e-4)
    assert np.dot(anchor, paraphrase) > np.dot(anchor, unrelated) + 0.3
    assert await embedder.embed_documents([]) == []


async def test_a_text_alone_and_in_a_padded_batch_embed_the_same(embedder: Embedder) -> None:
    alone = await embedder.embed_query("bytea hex format")
    batched = (await embedder.embed_documents(["a much longer text " * 20, "bytea hex format"]))[1]
    assert float(np.dot(alone, batched)) > 0.9999


async def test_openai_embeddings_ask_for_384_dimensions() -> None:
    server = ScriptedOpenAI()
    with server.running():
        settings = Settings(embeddings="openai", openai_api_key="sk-test", openai_base_url=server.base_url)
        embedder = create_embedder(settings)
        vectors = await embedder.embed_documents(["first chunk", "second chunk"])
        query = await embedder.embed_query("a question")
    assert embedder.name == "openai/text-embedding-3-small@384"
    assert [len(vector) for vector in (*vectors, query)] == [DIMENSIONS] * 3
    first = server.requests[0]
    assert (first["path"], first["model"], first["dimensions"]) == ("/v1/embeddings", "text-embedding-3-small", 384)
    assert first["input"] == ["first chunk", "second chunk"]
    assert first["auth"] == "Bearer sk-test"
