// The caller's conversations, most recently active first.

import { describe } from "./api.js";
import { el, say, when } from "./dom.js";

export const UNTITLED = "Untitled conversation";

export class Threads {
  /** `onOpen(thread)` opens a conversation; `onDeleted(id)` follows a deletion. */
  constructor(api, { list, status }, { onOpen, onDeleted }) {
    this.api = api;
    this.list = list;
    this.status = status;
    this.onOpen = onOpen;
    this.onDeleted = onDeleted;
    this.threads = [];
    this.active = null;
  }

  reset() {
    this.threads = [];
    this.active = null;
    this.render();
  }

  async refresh() {
    const search = { limit: 50, sort_by: "updated_at", sort_order: "desc" };
    this.threads = await this.api.request("POST", "/threads/search", { json: search });
    this.render();
  }

  select(id) {
    this.active = id;
    this.render();
  }

  async remove(thread) {
    try {
      await this.api.request("DELETE", `/threads/${thread.thread_id}`);
      this.threads = this.threads.filter((t) => t.thread_id !== thread.thread_id);
      this.render();
      say(this.status, `Conversation “${title(thread)}” deleted.`);
      this.onDeleted(thread.thread_id);
    } catch (error) {
      say(this.status, `The conversation was not deleted: ${describe(error)}`);
    }
  }

  render() {
    const items = this.threads.map((thread) =>
      el(
        "li",
        { class: "thread" },
        el(
          "button",
          {
            type: "button",
            class: "thread-open",
            "aria-current": thread.thread_id === this.active ? "true" : null,
            onclick: () => this.onOpen(thread),
          },
          el("span", { class: "thread-title" }, title(thread)),
          el("time", { datetime: thread.updated_at }, when(thread.updated_at)),
        ),
        el(
          "button",
          {
            type: "button",
            class: "quiet",
            "aria-label": `Delete conversation “${title(thread)}”`,
            onclick: () => this.remove(thread),
          },
          "Delete",
        ),
      ),
    );
    this.list.replaceChildren(...items);
    if (!items.length) this.list.append(el("li", { class: "empty" }, "No conversations yet."));
  }
}

export function title(thread) {
  return thread.title || UNTITLED;
}
