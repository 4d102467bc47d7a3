// The viewer's JSON API, over fetch. Same origin: the token, when there is one,
// travels in the cookie the server set when the page was opened with ?token=.

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

export async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch (err) {
      /* not JSON */
    }
    throw new ApiError(response.status, typeof detail === "string" ? detail : detailText(detail));
  }
  return response.json();
}

/** A JSON error's detail as text: a 422's list of refused parameters as each one's
 * name, what is wrong and the value given ("offset: Input should be ... (got "9e9")"). */
function detailText(detail) {
  if (!Array.isArray(detail)) return JSON.stringify(detail);
  return detail.map((d) => {
    if (!d || typeof d !== "object" || typeof d.msg !== "string") return JSON.stringify(d);
    const where = Array.isArray(d.loc) ? d.loc.filter((x, i) => i > 0 || !["query", "path", "header", "body"].includes(x)).join(".") : "";
    return `${where ? where + ": " : ""}${d.msg}${"input" in d ? ` (got ${JSON.stringify(d.input)})` : ""}`;
  }).join("; ");
}

export function runPath(runId) {
  return `/runs/${encodeURIComponent(runId)}`;
}

/**
 * How a run came from its parent run: "child" (a step of the parent started it: a
 * sub-workflow, a spawn's child), "fork" (of the parent, from its `parent_step_id`),
 * "replay", or null for a run with no parent.
 */
export function runOrigin(run) {
  if (!run.parent_run_id) return null;
  if (run.parent_attempt !== null && run.parent_attempt !== undefined) return "child";
  return run.parent_step_id ? "fork" : "replay";
}
