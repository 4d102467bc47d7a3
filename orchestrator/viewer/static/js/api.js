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
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return response.json();
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
