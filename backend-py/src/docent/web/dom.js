// Building the page from data. Untrusted text (documents, answers, titles) only ever
// becomes a text node: nothing here parses HTML.

/** An element with attributes (`on*` functions become listeners) and children (strings are text). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "href") {
      const safe = safeUrl(value);
      if (safe) node.setAttribute("href", safe);
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  node.append(...children.flat().filter((child) => child !== null && child !== undefined));
  return node;
}

/** The URL if it is http(s), otherwise null: no javascript:, data: or other schemes. */
export function safeUrl(value) {
  try {
    const url = new URL(String(value), location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

export function $(selector) {
  return document.querySelector(selector);
}

/** Show `message` in a live region (an empty message clears it). */
export function say(region, message) {
  region.textContent = message || "";
  region.hidden = !message;
}

export function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}
