"""Agent runs: one at a time per thread, streamed to any number of listeners, traced, counted."""

from docent.runs.live import LiveRun
from docent.runs.manager import RunManager, RunSpec
from docent.runs.tracing import Tracing

__all__ = ["LiveRun", "RunManager", "RunSpec", "Tracing"]
