"""What went wrong in a run, in words for the user and a stable kind for metrics."""

import json
import logging

import httpx
import openai
import pydantic
from langgraph.errors import GraphRecursionError

from docent.db.engine import unavailable
from docent.errors import DocentError

logger = logging.getLogger(__name__)
RETRY_HINT = "Your message is kept in the conversation; ask again to retry."
NOT_SAVED = "Your message was not saved; send it again."


# First match wins: timeouts are connection errors, and both are OpenAI errors.
_KNOWN: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str, str], ...] = (
    (openai.APITimeoutError, "model_timeout", "The language model did not answer in time."),
    (openai.APIStatusError, "model_error", "The language model failed (HTTP {status})."),
    (
        (openai.APIConnectionError, httpx.TransportError),
        "model_unreachable",
        "The language model could not be reached.",
    ),
    (
        (openai.OpenAIError, json.JSONDecodeError, pydantic.ValidationError),
        "model_error",
        "The language model sent a response Docent could not read.",
    ),
    (GraphRecursionError, "step_limit", "The agent took too many steps for one answer."),
)
_UNAVAILABLE = "The database became unavailable during the run."


def describe(error: BaseException) -> tuple[str, str]:
    """`(kind, message)`: nothing internal, and unexpected errors logged with their stack."""
    if isinstance(error, DocentError):
        return error.code, f"{error.detail} {RETRY_HINT}"
    if unavailable(error):
        return "database_unavailable", f"{_UNAVAILABLE} {RETRY_HINT}"
    for types, kind, message in _KNOWN:
        if isinstance(error, types):
            status = getattr(error, "status_code", "?")
            return kind, f"{message.format(status=status)} {RETRY_HINT}"
    logger.error("run failed", exc_info=error)
    return "internal_error", f"The run failed unexpectedly. {RETRY_HINT}"
