// The open conversation: its history, and asking a question with the answer streamed in.

import { answerItem, questionItem, renderAnswer, runActions, sourcesList, textOf } from "./answer.js";
import { describe } from "./api.js";
import { el, say } from "./dom.js";
import { UNTITLED } from "./threads.js";

const STREAM_MODES = ["messages-tuple", "values"];

export class Chat {
  constructor(api, config, elements, { onThreadChanged }) {
    this.api = api;
    this.traceTemplate = config.langsmith?.run_url_template ?? null;
    Object.assign(this, elements); // messages, form, input, send, stop, error, heading, dialog
    this.onThreadChanged = onThreadChanged;
    this.threadId = null;
    this.busy = false;
    this.running = null; // the run being streamed: { threadId, runId, stopped, view }
    this.view = 0; // bumped whenever another conversation is shown
    this.openPassage = (citation) => this.showPassage(citation);
    this.stop.addEventListener("click", () => this.stopRun());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.ask(this.input.value.trim());
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
  }

  start(title = "New conversation", threadId = null) {
    this.view += 1;
    this.threadId = threadId;
    this.heading.textContent = title;
    this.messages.replaceChildren();
    say(this.error, "");
    // An answer still streaming for the conversation left behind finishes in the background;
    // Stop is for the answer on screen only. Ask stays disabled until that answer ends.
    this.stop.hidden = true;
    this.send.hidden = false;
  }

  async open(thread) {
    this.start(thread.title || UNTITLED, thread.thread_id);
    const view = this.view;
    try {
      const state = await this.api.request("GET", `/threads/${thread.thread_id}/state`);
      if (view === this.view) this.showHistory(state.values ?? {});
    } catch (error) {
      if (view === this.view) say(this.error, `This conversation could not be opened: ${describe(error)}`);
    }
  }

  showHistory({ messages = [], citations = [] }) {
    // Questions and final answers; tool calls and their results stay out of the way.
    const shown = messages.filter((m) => m.type === "human" || (m.type === "ai" && textOf(m.content) && !m.tool_calls?.length));
    const lastAnswer = shown.at(-1)?.type === "ai" ? shown.at(-1) : null;
    for (const message of shown) {
      if (message.type === "human") {
        this.messages.append(questionItem(textOf(message.content)));
        continue;
      }
      const { item, text } = answerItem();
      item.removeAttribute("aria-busy");
      // Each answer carries its citations; `citations` is the last turn's (older threads).
      const own = message.additional_kwargs?.citations ?? (message === lastAnswer ? citations : []);
      renderAnswer(text, textOf(message.content), own, this.openPassage);
      item.append(sourcesList(own, this.openPassage) ?? "");
      this.messages.append(item);
    }
  }

  async ask(question) {
    if (!question || this.busy) return;
    this.busy = true;
    this.send.disabled = true;
    say(this.error, "");
    const view = this.view;
    const asked = questionItem(question);
    this.messages.append(asked);
    this.input.value = "";
    const answer = answerItem();
    try {
      const threadId = this.threadId ?? (await this.createThread(question));
      this.messages.append(answer.item);
      answer.item.scrollIntoView({ block: "nearest" });
      this.running = { threadId, runId: null, stopped: false, view };
      if (view === this.view) {
        this.send.hidden = true;
        this.stop.hidden = false;
      }
      const outcome = await this.stream(threadId, question, answer, this.running);
      if (view !== this.view) return;
      this.finish(answer, outcome, threadId, question);
    } catch (error) {
      if (view !== this.view) return;
      answer.item.remove();
      asked.append(el("p", { class: "note" }, "Not sent."));
      this.keep(question, describe(error));
    } finally {
      this.busy = false;
      this.running = null;
      this.stop.hidden = true;
      this.stop.disabled = true;
      this.send.hidden = false;
      this.send.disabled = false;
      this.onThreadChanged(this.threadId);
    }
  }

  async createThread(question) {
    const thread = await this.api.request("POST", "/threads", { json: {} });
    this.threadId = thread.thread_id;
    this.heading.textContent = question.length > 80 ? `${question.slice(0, 79)}…` : question;
    return thread.thread_id;
  }

  /** Stream a run; tokens go straight into `answer.text` while the model writes. */
  async stream(threadId, question, answer, running) {
    const outcome = { runId: null, values: null, error: null, running };
    let writing = null; // the id of the message being shown: a new model call starts afresh
    const body = {
      assistant_id: "docent",
      input: { messages: [{ role: "user", content: question }] },
      stream_mode: STREAM_MODES,
    };
    await this.api.stream(`/threads/${threadId}/runs/stream`, body, (event, data) => {
      if (event === "metadata") {
        outcome.runId = running.runId = data.run_id;
        this.stop.disabled = running.view !== this.view; // stoppable once it has an id, while shown
      }
      else if (event === "values") outcome.values = data;
      else if (event === "error") outcome.error = data;
      else if (event === "messages") {
        const [chunk] = data;
        const piece = chunk.type === "AIMessageChunk" ? textOf(chunk.content) : "";
        if (!piece) return;
        if (chunk.id !== writing) {
          writing = chunk.id;
          answer.text.replaceChildren();
        }
        answer.text.append(piece);
      }
    });
    return outcome;
  }

  /** Stop the streamed run: the service cancels it, and the stream then ends. */
  async stopRun() {
    const running = this.running;
    if (!running?.runId || running.stopped || running.view !== this.view) return;
    running.stopped = true;
    this.stop.disabled = true;
    try {
      await this.api.send("POST", `/threads/${running.threadId}/runs/${running.runId}/cancel`);
    } catch (error) {
      // 404: it finished first, and its answer arrives as usual.
      if (error.status !== 404) say(this.error, `The answer could not be stopped: ${describe(error)}`);
    }
  }

  finish(answer, { runId, values, error, running }, threadId, question) {
    answer.item.removeAttribute("aria-busy");
    const last = values?.messages?.at(-1);
    const answered = last?.type === "ai" && textOf(last.content) && !last.tool_calls?.length;
    if (running.stopped && !error && !answered) {
      // The model's unfinished message is not saved: say so beside what was shown.
      answer.item.classList.add("stopped");
      answer.item.append(el("p", { class: "note stopped" }, "Stopped. This unfinished answer is not saved."));
      return;
    }
    if (error) {
      answer.item.classList.add("failed");
      answer.text.replaceChildren(el("p", { class: "note" }, error.message || "The answer failed."));
      this.keep(question, error.message || "The answer failed.");
      return;
    }
    const final = (values?.messages ?? []).filter((m) => m.type === "ai").at(-1);
    const content = final ? textOf(final.content) : answer.text.textContent;
    renderAnswer(answer.text, content, values?.citations, this.openPassage);
    const sources = sourcesList(values?.citations, this.openPassage);
    if (sources) answer.item.append(sources);
    if (runId) answer.item.append(runActions(this.api, { threadId, runId, traceTemplate: this.traceTemplate }));
  }

  /** A failed question goes back into the box, ready to send again. */
  keep(question, message) {
    say(this.error, message);
    if (!this.input.value.trim()) this.input.value = question;
  }

  showPassage(citation) {
    this.dialog.querySelector("[data-passage-title]").textContent = citation.title;
    this.dialog.querySelector("[data-passage-ref]").textContent = `Source [${citation.ref}]`;
    this.dialog.querySelector("[data-passage-text]").textContent = citation.snippet;
    this.dialog.showModal();
  }
}
