// Rate limiting for edge functions, shared by every isolate: the counter lives in Postgres
// (ops.hit_rate_limit through the Data API's RPC), never in this isolate's memory.
// Answers 429 with Retry-After and the IETF RateLimit / RateLimit-Policy fields.
// A request signed by `supagate verify --rate-limit` (X-Supagate-Probe: nonce.unix.hmac,
// HMAC-SHA256 with RATE_LIMIT_PROBE_SECRET, 60 s validity) counts under its own key, so the
// probe never spends a real caller's quota; an unsigned or stale probe header is ignored.

const encoder = new TextEncoder();

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false,
    ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(message));
  return Array.from(new Uint8Array(mac)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function probeKey(header: string | null, secret: string | undefined, now: number): Promise<string | null> {
  if (!header || !secret) return null;
  const [nonce, stamp, mac] = header.split(".");
  if (!nonce || !/^[A-Za-z0-9_-]{8,64}$/.test(nonce) || Math.abs(now - Number(stamp)) > 60) return null;
  const expected = await hmacHex(secret, `${nonce}.${stamp}`);
  if (expected.length !== (mac ?? "").length) return null;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ mac.charCodeAt(i);
  return diff === 0 ? `probe:${nonce}` : null;
}

export interface RateLimitOptions {
  subject?: string; // the caller's id when the policy keys by user; default: the client address
  supabaseUrl?: string;
  serviceKey?: string;
}

// A Response (429, or 503 when the limiter cannot answer) to return as is, or the headers
// to add to the function's own response.
export async function rateLimit(req: Request, fn: string, options: RateLimitOptions = {}): Promise<Response | Headers> {
  const url = options.supabaseUrl ?? Deno.env.get("SUPABASE_URL");
  const key = options.serviceKey ?? Deno.env.get("SUPABASE_SERVICE_ROLE_KEY");
  const now = Math.floor(Date.now() / 1000);
  const probe = await probeKey(req.headers.get("x-supagate-probe"), Deno.env.get("RATE_LIMIT_PROBE_SECRET"), now);
  const address = (req.headers.get("x-forwarded-for") ?? "").split(",")[0].trim() || "unknown";
  const subject = probe ?? options.subject ?? `ip:${address}`;
  let answer: { allowed: boolean; remaining: number; reset_at: string; max_requests: number; window_seconds: number };
  try {
    const response = await fetch(`${url}/rest/v1/rpc/supagate_hit_rate_limit`, {
      method: "POST",
      headers: { "content-type": "application/json", apikey: key ?? "", authorization: `Bearer ${key}` },
      body: JSON.stringify({ p_function: fn, p_subject: subject }),
    });
    if (!response.ok) throw new Error(`rate limiter answered ${response.status}`);
    [answer] = await response.json();
  } catch (_error) {
    // Fail closed: a limiter that cannot count must not let a flood through.
    return new Response(JSON.stringify({ error: "rate limiter unavailable" }),
      { status: 503, headers: { "content-type": "application/json", "retry-after": "5" } });
  }
  const reset = Math.max(1, Math.ceil(Date.parse(answer.reset_at) / 1000 - Date.now() / 1000));
  const headers = new Headers({
    "ratelimit-policy": `"default";q=${answer.max_requests};w=${answer.window_seconds}`,
    "ratelimit": `"default";r=${answer.remaining};t=${reset}`,
  });
  if (answer.allowed) return headers;
  headers.set("retry-after", String(reset));
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify({ error: "too many requests" }), { status: 429, headers });
}
