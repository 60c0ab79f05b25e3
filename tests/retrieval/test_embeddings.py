"""The embedding models: the local ONNX model, and OpenAI's API asked for 384 dimensions."""

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from docent.retrieval.embeddings import (
    DIMENSIONS,
    LOCAL_MODEL_NAME,
    Embedder,
    create_embedder,
    integer_products,
    local_model_file,
    local_tokenizer,
)
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


def test_the_int8_weights_are_multiplied_as_int8_and_embed_as_the_float_products_did(embedder: Embedder) -> None:
    rewritten = onnx.load_from_string(integer_products(local_model_file()))
    operators = [node.op_type for node in rewritten.graph.node]
    assert operators.count("DynamicQuantizeMatMul") == 36  # every linear layer of the 6 blocks
    assert operators.count("Cast") == 3  # of 39: only the three embedding tables are still widened
    assert operators.count("MatMul") == 12  # attention's own products, which have no weights

    # The shipped model as it was used before: float32 products of the widened weights.
    tokenizer = local_tokenizer()
    floats = onnxruntime.InferenceSession(str(local_model_file()), providers=["CPUExecutionProvider"])
    texts = ["What does VACUUM do?", "Write-ahead logging writes each change to the log before the data files. " * 10]
    for text, vector in zip(texts, embedder.embeddings.embed_documents(texts), strict=True):
        ids = np.array([tokenizer.encode(text).ids])
        hidden = floats.run(
            None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        )
        reference = hidden[0][0].mean(axis=0)
        similarity = float(np.dot(vector, reference / np.linalg.norm(reference)))
        assert 0.98 < similarity < 0.9999  # close, and not the float products themselves


def test_a_model_without_int8_products_is_refused(tmp_path: Path) -> None:
    weight = onnx.numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "weight")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "weight"], ["y"])],
        "float",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    onnx.save(onnx.helper.make_model(graph), tmp_path / "float.onnx")
    with pytest.raises(RuntimeError, match="no int8 matrix products"):
        integer_products(tmp_path / "float.onnx")


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
