"""`build_graph(...)`: the agent's state machine, compiled once at start-up.

    START → begin → agent ⇄ tools
                      ↓
                     cite → END

`begin` clears the per-turn record; `agent` calls the model (with tools until the turn's
rounds are spent); `tools` runs the calls and records what was retrieved; `cite` keeps the
answer's references that name a passage retrieved in this turn.
"""

from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from docent.graph import citations
from docent.graph.context import RunContext
from docent.graph.prompts import FINAL_ROUND, model_input
from docent.graph.state import AgentState, Retrieval, empty_retrieval
from docent.graph.tools import TOOL_SPECS, run_tool

GRAPH_ID = "docent"
Graph = CompiledStateGraph[AgentState, RunContext, AgentState, AgentState]


def build_graph(
    model: BaseChatModel,
    *,
    checkpointer: BaseCheckpointSaver[Any] | None,
    max_tool_rounds: int = 4,
    history_turns: int = 10,
    search_mode: str = "hybrid",
) -> Graph:
    with_tools = model.bind_tools(TOOL_SPECS)

    def begin(state: AgentState) -> AgentState:
        return {"citations": [], "retrieval": empty_retrieval(search_mode)}

    async def agent(state: AgentState) -> AgentState:
        messages = model_input(state["messages"], history_turns=history_turns)
        if state["retrieval"]["rounds"] < max_tool_rounds:
            response = await with_tools.ainvoke(messages)
        else:
            response = await model.ainvoke([*messages, FINAL_ROUND])
        return {"messages": [response]}

    async def tools(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
        call_message = state["messages"][-1]
        assert isinstance(call_message, AIMessage)  # noqa: S101 (routing guarantees it)
        retrieval = state["retrieval"]
        results: list[AnyMessage] = []
        for call in call_message.tool_calls:
            result, retrieval = await run_tool(call, retrieval, runtime.context)
            results.append(result)
        retrieval = Retrieval(**(retrieval | {"rounds": retrieval["rounds"] + 1}))
        return {"messages": results, "retrieval": retrieval}

    async def cite(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
        answer = state["messages"][-1].text
        return {"citations": await citations.resolve(answer, state["retrieval"], runtime.context)}

    def route(state: AgentState) -> Literal["tools", "cite"]:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else "cite"

    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("begin", begin)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_node("cite", cite)
    graph.add_edge(START, "begin")
    graph.add_edge("begin", "agent")
    graph.add_conditional_edges("agent", route)
    graph.add_edge("tools", "agent")
    graph.add_edge("cite", END)
    return graph.compile(checkpointer=checkpointer, name=GRAPH_ID)
