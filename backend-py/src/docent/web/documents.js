// The caller's documents: upload (file picker or drag and drop), live status, delete.

import { describe } from "./api.js";
import { el, say } from "./dom.js";

const POLL_MS = 700;
const SETTLED = new Set(["ready", "failed"]);

export class Documents {
  constructor(api, { list, picker, dropZone, status }) {
    this.api = api;
    this.list = list;
    this.status = status;
    this.documents = new Map(); // id -> document, newest first
    this.watching = new Set();
    this.generation = 0; // bumped on sign-out, so a pending poll of the last user stops
    picker.addEventListener("change", () => {
      this.upload([...picker.files]);
      picker.value = "";
    });
    dropZone.addEventListener("dragover", (event) => {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
    dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
    dropZone.addEventListener("drop", (event) => {
      event.preventDefault();
      dropZone.classList.remove("dragging");
      this.upload([...(event.dataTransfer?.files ?? [])]);
    });
  }

  reset() {
    this.generation += 1;
    this.documents.clear();
    this.watching.clear();
    this.render();
  }

  async refresh() {
    const documents = await this.api.request("GET", "/documents");
    this.documents = new Map(documents.map((document) => [document.id, document]));
    this.render();
    documents.filter((d) => !SETTLED.has(d.status)).forEach((d) => this.watch(d.id));
  }

  async upload(files) {
    for (const file of files) {
      const form = new FormData();
      form.append("file", file, file.name);
      try {
        const document = await this.api.request("POST", "/documents", { form });
        this.documents = new Map([[document.id, document], ...[...this.documents].filter(([id]) => id !== document.id)]);
        this.render();
        say(this.status, `${file.name}: uploaded, ${document.status}.`);
        this.watch(document.id);
      } catch (error) {
        say(this.status, `${file.name} was not uploaded: ${describe(error)}`);
      }
    }
  }

  async watch(id) {
    if (this.watching.has(id)) return;
    this.watching.add(id);
    const generation = this.generation;
    try {
      for (;;) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        if (generation !== this.generation || !this.documents.has(id)) return;
        const document = await this.api.request("GET", `/documents/${id}`);
        if (generation !== this.generation || !this.documents.has(id)) return;
        this.documents.set(id, document);
        this.render();
        if (SETTLED.has(document.status)) {
          const outcome = document.status === "ready" ? "is ready" : `failed: ${document.error ?? "unknown error"}`;
          say(this.status, `${document.title} ${outcome}.`);
          return;
        }
      }
    } catch (error) {
      if (generation === this.generation) say(this.status, `Could not follow a document: ${describe(error)}`);
    } finally {
      this.watching.delete(id);
    }
  }

  async remove(document) {
    try {
      await this.api.request("DELETE", `/documents/${document.id}`);
      this.documents.delete(document.id);
      this.render();
      say(this.status, `${document.title} deleted.`);
    } catch (error) {
      say(this.status, `${document.title} was not deleted: ${describe(error)}`);
    }
  }

  render() {
    const items = [...this.documents.values()].map((document) => this.item(document));
    this.list.replaceChildren(...items);
    if (!items.length) this.list.append(el("li", { class: "empty" }, "No documents yet."));
  }

  item(document) {
    const passages = document.status === "ready" ? ` · ${document.chunk_count} passage${document.chunk_count === 1 ? "" : "s"}` : "";
    return el(
      "li",
      { class: "document", "data-status": document.status },
      el("span", { class: "document-title" }, document.title),
      el("span", { class: `badge ${document.status}` }, `${document.status}${passages}`),
      document.error ? el("span", { class: "document-error" }, document.error) : null,
      el(
        "button",
        { type: "button", class: "quiet", "aria-label": `Delete ${document.title}`, onclick: () => this.remove(document) },
        "Delete",
      ),
    );
  }
}
