// Docent's HTTP API from the page: JSON requests with the bearer token, server-sent events
// read with fetch (EventSource cannot send an Authorization header), and errors in words.

export class ApiError extends Error {
  constructor(status, code, detail, retryAfter = null) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

export class Api {
  /** `token()` resolves to the current access token; `onUnauthorized()` runs on a 401. */
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, { json, form } = {}) {
    const response = await this.send(method, path, { json, form });
    if (response.status === 204) return null;
    return response.json();
  }

  /** POST `body` to a streaming route; call `onEvent(event, data)` for each event. */
  async stream(path, body, onEvent) {
    const response = await this.send("POST", path, { json: body, accept: "text/event-stream" });
    for await (const [event, data] of readEvents(response.body)) onEvent(event, data);
  }

  async send(method, path, { json, form, accept = "application/json" } = {}) {
    const headers = { Accept: accept, Authorization: `Bearer ${await this.token()}` };
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form !== undefined) {
      body = form;
    }
    const response = await fetch(path, { method, headers, body });
    if (response.ok) return response;
    const error = await asError(response);
    if (response.status === 401) this.onUnauthorized(error);
    throw error;
  }
}

export async function asError(response) {
  let payload = {};
  try {
    payload = await response.json();
  } catch {
    // not JSON (a proxy's error page): the status says enough
  }
  const retry = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  // A validation error names each field's problem; those read better than the summary.
  const problems = Array.isArray(payload.errors) ? payload.errors.map((e) => String(e.message)) : [];
  const detail = problems.length ? problems.join("; ") : payload.detail;
  return new ApiError(response.status, payload.error, detail, Number.isFinite(retry) ? retry : null);
}

/** Server-sent events from a byte stream, as [event, parsed data] pairs. */
export async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer = (buffer + value).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const parsed = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (parsed) yield parsed;
    }
  }
}

function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  return [event, JSON.parse(data.join("\n"))];
}

/** What went wrong, in words for people. */
export function describe(error) {
  if (!(error instanceof ApiError)) {
    return "Docent could not be reached. Check your connection, then try again.";
  }
  if (error.status === 409 && error.code === "thread_busy") {
    return "This conversation is still answering the previous question. Wait for it to finish, then ask again.";
  }
  if (error.status === 429) {
    const wait = error.retryAfter ? ` You can ask again in ${duration(error.retryAfter)}.` : "";
    return `You have reached a limit: ${error.detail || "too many requests."}${wait}`;
  }
  if (error.status === 401) return "Your session has ended. Sign in again.";
  if (error.status >= 500) return `Docent had a problem (${error.status}). Try again in a moment.`;
  return error.detail || `The request failed (HTTP ${error.status}).`;
}

export function duration(seconds) {
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} minutes`;
  return `${Math.round(seconds / 3600)} hours`;
}
