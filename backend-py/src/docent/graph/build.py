"""`build_graph(...)`: the agent's state machine, compiled once at start-up.

    START → agent ⇄ tools
              ↓
             END

`agent` calls the model (with tools until the turn's rounds are spent). On a turn's first
call it starts a fresh retrieval record; on the answer it keeps the references that name a
passage retrieved in this turn. `tools` runs the calls and records what was retrieved.

Starting and citing live in `agent` rather than in nodes of their own: every node is a
superstep, and every superstep a checkpoint write, so two fewer nodes save two writes a
turn (about a third of the checkpointer's time).
"""

from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from docent.graph import citations
from docent.graph.context import RunContext
from docent.graph.prompts import FINAL_ROUND, model_input, turn_start
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

    async def agent(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
        starting = isinstance(state["messages"][-1], HumanMessage)
        retrieval = empty_retrieval(search_mode) if starting else state["retrieval"]
        messages = model_input(state["messages"], history_turns=history_turns)
        if retrieval["rounds"] < max_tool_rounds:
            response = await with_tools.ainvoke(messages)
        else:
            response = await model.ainvoke([*messages, FINAL_ROUND])
        update: AgentState = {"messages": [response]}
        if starting:
            update |= {"retrieval": retrieval, "citations": []}
        if not (isinstance(response, AIMessage) and response.tool_calls):
            turn = state["messages"][turn_start(state["messages"]) :]
            update["citations"] = citations.resolve(response.text, turn, retrieval)
            if update["citations"]:  # the answer keeps its own, for a conversation read back later
                response.additional_kwargs["citations"] = update["citations"]
            if runtime.context is not None and runtime.context.on_answer is not None:
                runtime.context.on_answer()
        return update

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

    def route(state: AgentState) -> Literal["tools", "__end__"]:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else "__end__"

    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer, name=GRAPH_ID)
