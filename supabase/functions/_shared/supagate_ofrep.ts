// OpenFeature Remote Evaluation Protocol (OFREP) over the app's flags, so any OpenFeature SDK
// with the generic OFREP provider reads them: POST /ofrep/v1/evaluate/flags/{key} (single)
// and POST /ofrep/v1/evaluate/flags (bulk, with ETag / If-None-Match -> 304).
// `evaluate` returns the caller's flags as the database decides them (the example app calls
// public.my_feature_flags() with the caller's JWT): value, OpenFeature reason, kind.

export interface EvaluatedFlag {
  key: string;
  enabled: boolean;
  reason: string;
  kind: string;
}

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
    if (req.method !== "POST") return json({ errorDetails: "use POST" }, 405);
    try {
      const body = await req.text();
      if (body && typeof JSON.parse(body) !== "object") throw new SyntaxError("not an object");
    } catch (_error) {
      const key = path.split("/").pop() ?? "";
      return path === "/ofrep/v1/evaluate/flags"
        ? json({ errorCode: "PARSE_ERROR", errorDetails: "the body is not a JSON object" }, 400)
        : json({ key, errorCode: "PARSE_ERROR", errorDetails: "the body is not a JSON object" }, 400);
    }
    let flags: EvaluatedFlag[];
    try {
      flags = await evaluate(req);
    } catch (error) {
      return json({ errorDetails: `flags could not be read: ${(error as Error).message}` }, 500);
    }
    if (path === "/ofrep/v1/evaluate/flags") {
      const payload = JSON.stringify({ flags: flags.map(success) });
      const etag = await etagOf(payload);
      if (req.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers: { etag } });
      return new Response(payload, { status: 200, headers: { "content-type": "application/json", etag } });
    }
    const match = path.match(/^\/ofrep\/v1\/evaluate\/flags\/([^/]+)$/);
    if (!match) return json({ errorDetails: "not an OFREP path" }, 404);
    const key = decodeURIComponent(match[1]);
    const flag = flags.find((f) => f.key === key);
    if (!flag || flag.reason === "ERROR") {
      return json({ key, errorCode: "FLAG_NOT_FOUND", errorDetails: `no flag ${key}` }, 404);
    }
    return json({ ...success(flag), cacheable: false });
  };
}
