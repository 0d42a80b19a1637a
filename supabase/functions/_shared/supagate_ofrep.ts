// OpenFeature Remote Evaluation Protocol (OFREP) over the app's flags, so any OpenFeature SDK
// with the generic OFREP provider reads them: POST /ofrep/v1/evaluate/flags/{key} (single)
// and POST /ofrep/v1/evaluate/flags (bulk, with ETag / If-None-Match -> 304).
// `evaluate` returns the caller's flags as the database decides them (the example app calls
// public.my_feature_flags() with the caller's JWT): value, OpenFeature reason, kind.
// Every error answer is one of the fixed texts below, in the shape the OFREP OpenAPI file
// gives its status (open-feature/protocol service/openapi.yaml): 400 evaluationFailure
// {key, errorCode} or bulkEvaluationFailure {errorCode}, 404 flagNotFound, 500
// generalErrorResponse {errorDetails}. Nothing a client sees repeats what failed upstream.

export interface EvaluatedFlag {
  key: string;
  enabled: boolean;
  reason: string;
  kind: string;
}

const BULK_PATH = "/ofrep/v1/evaluate/flags";
const ERRORS = {
  body: "the request body is not a JSON object",
  key: "the flag key in the path is not valid percent-encoding",
  notFound: "flag not found",
  unavailable: "flags could not be evaluated",
  method: "use POST",
  path: "not an OFREP path",
};

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

function success(flag: EvaluatedFlag) {
  return { key: flag.key, value: flag.enabled, reason: flag.reason, variant: flag.enabled ? "on" : "off",
           metadata: { kind: flag.kind } };
}

async function etagOf(body: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body));
  return `"${Array.from(new Uint8Array(digest)).slice(0, 16).map((b) => b.toString(16).padStart(2, "0")).join("")}"`;
}

export function ofrepHandler(evaluate: (req: Request) => Promise<EvaluatedFlag[]>) {
  return async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname.replace(/^.*?(\/ofrep\/v1\/)/, "$1");
    if (req.method !== "POST") return json({ errorDetails: ERRORS.method }, 405);
    const bulk = path === BULK_PATH;
    const match = path.match(/^\/ofrep\/v1\/evaluate\/flags\/([^/]+)$/);
    if (!bulk && !match) return json({ errorDetails: ERRORS.path }, 404);
    let key = "";
    if (match) {
      try {
        key = decodeURIComponent(match[1]);
      } catch (_error) { // a stray `%`: the client's mistake, not a 500
        return json({ key: match[1], errorCode: "PARSE_ERROR", errorDetails: ERRORS.key }, 400);
      }
    }
    try {
      const body = await req.text();
      const parsed = body ? JSON.parse(body) : {};
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new SyntaxError("not an object");
    } catch (_error) {
      return bulk ? json({ errorCode: "PARSE_ERROR", errorDetails: ERRORS.body }, 400)
        : json({ key, errorCode: "PARSE_ERROR", errorDetails: ERRORS.body }, 400);
    }
    let flags: EvaluatedFlag[];
    try {
      flags = await evaluate(req);
      if (!Array.isArray(flags)) throw new TypeError("evaluate did not return a list of flags");
    } catch (error) {
      // The cause stays in the function's log (its type only: an upstream message can quote
      // anything); the client gets the fixed text.
      console.error(`ofrep: evaluating flags failed (${(error as Error)?.name ?? typeof error})`);
      return json({ errorDetails: ERRORS.unavailable }, 500);
    }
    if (bulk) {
      const payload = JSON.stringify({ flags: flags.map(success) });
      const etag = await etagOf(payload);
      if (req.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers: { etag } });
      return new Response(payload, { status: 200, headers: { "content-type": "application/json", etag } });
    }
    const flag = flags.find((f) => f.key === key);
    if (!flag || flag.reason === "ERROR") {
      return json({ key, errorCode: "FLAG_NOT_FOUND", errorDetails: ERRORS.notFound }, 404);
    }
    return json({ ...success(flag), cacheable: false });
  };
}
