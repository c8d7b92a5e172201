// Starting a run: the POST the sandbox and lesson pages send (docs/protocol.md),
// and the JSON POST the pages' other requests share.

// Resolve with the run's status; reject with an Error carrying the field at
// fault, the HTTP status and, for a limit, the seconds to wait (Retry-After).
export async function createRun(body, { fetch: send = globalThis.fetch, token = "" } = {}) {
  const { response, data } = await postJson("/api/runs/", body, { fetch: send, token });
  if (response.ok) return data;
  const [field, message] = Object.entries(data.errors || { run: `could not start (HTTP ${response.status})` })[0];
  const error = new Error(message);
  error.field = field;
  error.status = response.status;
  const wait = Number(response.headers.get("Retry-After"));
  error.retryAfter = Number.isFinite(wait) && wait > 0 ? wait : null;
  throw error;
}

// POST `body` as JSON with the CSRF token; resolve with the response and its JSON
// body ({} when it has none).
export async function postJson(url, body, { fetch: send = globalThis.fetch, token = "" } = {}) {
  const response = await send(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRFToken": token },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  return { response, data };
}

// The moment a link names (?run=ID&at=FRAME&t=SECONDS), or null.
export function momentFromUrl(search = location.search) {
  const query = new URLSearchParams(search);
  const run = query.get("run");
  const at = query.get("at") || "";
  if (!run || !/^\d{1,9}$/.test(at)) return null;
  const t = Number.parseFloat(query.get("t") || "");
  return { run, at: Number(at), t: Number.isFinite(t) && t >= 0 ? t.toFixed(1) : "" };
}
