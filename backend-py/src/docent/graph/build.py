"""`build_graph(...)`: the agent's state machine, compiled once at start-up.

    START → agent ⇄ tools
              ↓
             END

`agent` calls the model (with tools until the turn's rounds are spent). On a turn's first
call it starts a fresh retrieval record and, with `search_first`, searches for the question
as asked, so that the model's first call already has passages to answer from; on the answer
it keeps the references that name a passage retrieved in this turn. `tools` runs the
model's calls, at most `MAX_CALLS_PER_ROUND` of them, and records what was retrieved; a
call whose arguments are not JSON comes back to the model as an error.

Starting, the first search and citing live in `agent` rather than in nodes of their own:
every node is a superstep, with LangGraph's work around it (and with `durability="async"`,
a checkpoint write).
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
from docent.graph.tools import SEARCH_MODE, TOOL_SPECS, run_tool, search_question, too_many_calls, unreadable_call

GRAPH_ID = "docent"
MAX_CALLS_PER_ROUND = 4  # tool calls run in one round; the rest come back to the model as errors
Graph = CompiledStateGraph[AgentState, RunContext, AgentState, AgentState]


def build_graph(
    model: BaseChatModel,
    *,
    checkpointer: BaseCheckpointSaver[Any] | None,
    max_tool_rounds: int = 4,
    history_turns: int = 10,
    search_first: bool = True,
) -> Graph:
    with_tools = model.bind_tools(TOOL_SPECS)

    async def agent(state: AgentState, runtime: Runtime[RunContext]) -> AgentState:
        question = state["messages"][-1]
        starting = isinstance(question, HumanMessage)
        retrieval = empty_retrieval(SEARCH_MODE) if starting else state["retrieval"]
        found: list[AnyMessage] = []
        if starting and search_first:
            found, retrieval = await search_question(question.text, retrieval, runtime.context)
            retrieval = Retrieval(**(retrieval | {"rounds": 1}))
        conversation = [*state["messages"], *found]
        messages = model_input(conversation, history_turns=history_turns)
        if retrieval["rounds"] < max_tool_rounds:
            response = await with_tools.ainvoke(messages)
        else:
            response = await model.ainvoke([*messages, FINAL_ROUND])
        update: AgentState = {"messages": [*found, response]}
        if starting:
            update |= {"retrieval": retrieval, "citations": []}
        if not _calls_tools(response):
            turn = conversation[turn_start(conversation) :]
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
        for n, call in enumerate(call_message.tool_calls):
            if n < MAX_CALLS_PER_ROUND:
                result, retrieval = await run_tool(call, retrieval, runtime.context)
            else:
                result = too_many_calls(call)
            results.append(result)
        # Calls whose arguments were not JSON: each answered, as the chat API requires.
        results.extend(unreadable_call(call) for call in call_message.invalid_tool_calls)
        retrieval = Retrieval(**(retrieval | {"rounds": retrieval["rounds"] + 1}))
        return {"messages": results, "retrieval": retrieval}

    def route(state: AgentState) -> Literal["tools", "__end__"]:
        return "tools" if _calls_tools(state["messages"][-1]) else "__end__"

    graph = StateGraph(AgentState, context_schema=RunContext)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route)
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer, name=GRAPH_ID)


def _calls_tools(message: AnyMessage) -> bool:
    """Whether the model's message calls tools, readable calls or not: either way it is not
    an answer, and every call must be answered."""
    return isinstance(message, AIMessage) and bool(message.tool_calls or message.invalid_tool_calls)
