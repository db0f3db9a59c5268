// fetch() for the annotator API: session cookie, CSRF header, JSON both ways, and errors a
// person can act on instead of "HTTP 400".

export class ApiError extends Error {
  constructor(message, status, data = null) {
    super(message);
    this.status = status;
    this.data = data;
  }

  get leaseGone() {
    return this.status === 409;
  }
}

function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

// "contamination_pct: Ensure this value is ..." from DRF's {field: [messages]} bodies.
function describe(status, data) {
  if (status === 404) return "Not found: this assignment or frame is not yours, or no longer exists.";
  if (status === 403) return "You are not allowed to do that; are you still logged in?";
  if (data && typeof data === "object") {
    if (typeof data.detail === "string") return data.detail;
    const parts = Object.entries(data).map(([field, messages]) => {
      const text = Array.isArray(messages) ? messages.join(" ") : String(messages);
      return field === "non_field_errors" ? text : `${field.replace(/_/g, " ")}: ${text}`;
    });
    if (parts.length) return parts.join(" · ");
  }
  if (status >= 500) return "The server failed to answer. Try again in a moment.";
  return `The request failed (HTTP ${status}).`;
}

export async function api(url, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("The server cannot be reached. Check the connection and try again.", 0);
  }
  if (response.status === 204) return null;
  const isJson = (response.headers.get("Content-Type") || "").includes("json");
  const data = isJson ? await response.json().catch(() => null) : null;
  if (!response.ok) throw new ApiError(describe(response.status, data), response.status, data);
  return data;
}
