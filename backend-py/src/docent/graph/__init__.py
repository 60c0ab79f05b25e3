"""The agent: a LangGraph state machine that answers from the caller's documents, with citations."""

from docent.graph.build import GRAPH_ID, build_graph
from docent.graph.context import RunContext
from docent.graph.models import create_chat_model
from docent.graph.state import AgentState, Citation

__all__ = ["GRAPH_ID", "AgentState", "Citation", "RunContext", "build_graph", "create_chat_model"]
