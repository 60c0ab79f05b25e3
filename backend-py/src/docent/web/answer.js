// One answer on the page: its text with [n] references as buttons that open the cited
// passage, the list of sources, thumbs up/down, and the LangSmith trace when there is one.

import { describe } from "./api.js";
import { el, say } from "./dom.js";

const REFERENCE = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;

/** A list item for an answer being written; `text` grows as tokens arrive. */
export function answerItem() {
  const text = el("div", { class: "text" });
  const item = el("li", { class: "turn answer", "aria-busy": "true" }, el("p", { class: "who" }, "Docent"), text);
  return { item, text };
}

export function questionItem(question) {
  return el("li", { class: "turn question" }, el("p", { class: "who" }, "You"), el("div", { class: "text" }, question));
}

/** Fill an answer's text, turning references that name a citation into buttons. */
export function renderAnswer(text, content, citations, openPassage) {
  const byRef = new Map((citations ?? []).map((citation) => [citation.ref, citation]));
  const parts = [];
  let last = 0;
  for (const match of content.matchAll(REFERENCE)) {
    const refs = match[1].split(",").map((n) => Number.parseInt(n, 10));
    if (!refs.some((ref) => byRef.has(ref))) continue;
    parts.push(content.slice(last, match.index));
    for (const ref of refs) {
      const citation = byRef.get(ref);
      parts.push(citation ? citeButton(citation, openPassage) : `[${ref}]`);
    }
    last = match.index + match[0].length;
  }
  parts.push(content.slice(last));
  text.replaceChildren(...parts);
}

function citeButton(citation, openPassage) {
  return el(
    "button",
    {
      type: "button",
      class: "cite",
      "aria-label": `Source ${citation.ref}: ${citation.title}`,
      onclick: () => openPassage(citation),
    },
    `[${citation.ref}]`,
  );
}

export function sourcesList(citations, openPassage) {
  if (!citations?.length) return null;
  const items = citations.map((citation) =>
    el(
      "li",
      {},
      el("button", { type: "button", class: "source", onclick: () => openPassage(citation) }, `[${citation.ref}] ${citation.title}`),
    ),
  );
  return el("div", { class: "sources" }, el("p", { class: "label" }, "Sources"), el("ol", {}, ...items));
}

/** Thumbs up/down for a run, and a link to its trace when LangSmith is on. */
export function runActions(api, { threadId, runId, traceTemplate }) {
  const status = el("span", { class: "feedback-status", role: "status" });
  const buttons = [];
  const send = async (score, button) => {
    try {
      await api.request("POST", `/threads/${threadId}/runs/${runId}/feedback`, { json: { key: "user-score", score } });
      buttons.forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      say(status, "Thanks for your feedback.");
    } catch (error) {
      say(status, `Feedback not sent: ${describe(error)}`);
    }
  };
  // Words, not emoji: a browser without an emoji font would show empty boxes.
  for (const [score, label] of [
    [1, "Good answer"],
    [0, "Bad answer"],
  ]) {
    const button = el("button", { type: "button", class: "quiet", "aria-pressed": "false" }, label);
    button.addEventListener("click", () => send(score, button));
    buttons.push(button);
  }
  const trace = traceTemplate
    ? el("a", { href: traceTemplate.replace("{run_id}", runId), target: "_blank", rel: "noopener noreferrer" }, "Trace in LangSmith")
    : null;
  return el("div", { class: "actions" }, ...buttons, trace, status);
}

/** The text of a message's content (a string, or a list of parts of which some are text). */
export function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((part) => (typeof part === "string" ? part : part?.text ?? "")).join("");
  return "";
}
