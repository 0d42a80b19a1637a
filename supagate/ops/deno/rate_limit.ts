// Rate limiting for edge functions, shared by every isolate: the counter lives in Postgres
// (ops.hit_rate_limit through the Data API's RPC), never in this isolate's memory.
// Answers 429 with Retry-After and the IETF RateLimit / RateLimit-Policy fields.
//
// Whose request it is. X-Forwarded-For is a list the client starts: anything it sends stays
// on the left, and each proxy on the way APPENDS the address that connected to it. On hosted
// Supabase the first hop is Cloudflare, which sets CF-Connecting-IP and appends that same
// address to the right of X-Forwarded-For (developers.cloudflare.com/fundamentals/reference/
// http-headers; cloudflare/cloudflared#1426 shows "a,b,<visitor>"); locally and self-hosted,
// Kong appends its peer ($proxy_add_x_forwarded_for, Kong/kong#2202). So the limiter keys on
// the RIGHTMOST entry, the one the platform wrote; the leftmost is the client's to invent
// (supabase discussions #34647 and #52040). IPv6 addresses count per /64, the block one
// host holds. A missing or unreadable address shares the one key `ip:unknown` (fail closed).
//
// A request signed by `supagate verify --rate-limit` counts under its run's own key, so the
// probe never spends a real caller's quota: X-Supagate-Probe: <run>.<nonce>.<unix>.<hmac>,
// HMAC-SHA256 with RATE_LIMIT_PROBE_SECRET over this function's name, the method, run, nonce
// and time (60 s validity). A header signed for another function or method, stale, or
// unsigned is ignored (the request counts under the caller's address); a nonce already
// spent is refused (429) by the database, in every isolate.

const encoder = new TextEncoder();
const PROBE_PART = /^[A-Za-z0-9_-]{8,64}$/;
const PROBE_VALIDITY_SECONDS = 60;
const UNKNOWN_ADDRESS = "ip:unknown";

function groupsOf(ipv6: string): string[] {
  const [head, tail] = ipv6.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const zeros = tail === undefined ? [] : Array(8 - left.length - right.length).fill("0");
  return [...left, ...zeros, ...right];
}

// The rate-limit subject for one address: `ip:<IPv4>` or `ip:<first 64 bits>::/64`, written
// the way the WHATWG URL parser writes a host (so 2001:DB8:0::1 and 2001:db8::1 are one key).
export function addressSubject(entry: string | undefined): string {
  const raw = (entry ?? "").trim().replace(/^\[(.*)\]$/, "$1");
  if (!raw || !/^[0-9A-Fa-f.:]+$/.test(raw)) return UNKNOWN_ADDRESS;
  let host: string;
  try {
    host = new URL(raw.includes(":") ? `http://[${raw}]/` : `http://${raw}/`).hostname;
  } catch (_error) {
    return UNKNOWN_ADDRESS;
  }
  if (!host.startsWith("[")) return /^\d+\.\d+\.\d+\.\d+$/.test(host) && host === raw ? `ip:${host}` : UNKNOWN_ADDRESS;
  const groups = groupsOf(host.slice(1, -1));
  if (groups.slice(0, 5).every((g) => g === "0") && groups[5] === "ffff") { // ::ffff:a.b.c.d is IPv4
    const [hi, lo] = [parseInt(groups[6], 16), parseInt(groups[7], 16)];
    return `ip:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return `ip:${groups.slice(0, 4).join(":")}::/64`;
}

// The client's subject from the headers the platform's proxy wrote (see the top of the file).
export function clientSubject(headers: Headers): string {
  return addressSubject((headers.get("x-forwarded-for") ?? "").split(",").pop());
}

// What the probe's HMAC covers; rate_probe.py builds the same text.
export function probeMessage(fn: string, method: string, run: string, nonce: string, stamp: string): string {
  return ["supagate-probe-v1", fn, method.toUpperCase(), run, nonce, stamp].join("\n");
}

async function verifiedProbe(req: Request, fn: string, secret: string | undefined, now: number) {
  const header = req.headers.get("x-supagate-probe");
  if (!header || !secret) return null;
  const parts = header.split(".");
  if (parts.length !== 4) return null;
  const [run, nonce, stamp, mac] = parts;
  if (!PROBE_PART.test(run) || !PROBE_PART.test(nonce) || !/^\d{1,12}$/.test(stamp) || !/^[0-9a-f]{64}$/.test(mac)) {
    return null;
  }
  if (Math.abs(now - Number(stamp)) > PROBE_VALIDITY_SECONDS) return null;
  const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false,
    ["verify"]);
  const signature = new Uint8Array(mac.match(/../g)!.map((byte) => parseInt(byte, 16)));
  const valid = await crypto.subtle.verify("HMAC", key, signature,
    encoder.encode(probeMessage(fn, req.method, run, nonce, stamp)));
  return valid ? { run, nonce } : null;
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
  const probe = await verifiedProbe(req, fn, Deno.env.get("RATE_LIMIT_PROBE_SECRET"), now);
  const subject = probe ? `probe:${probe.run}` : options.subject ?? clientSubject(req.headers);
  let answer: { allowed: boolean; remaining: number; reset_at: string; max_requests: number; window_seconds: number };
  try {
    const response = await fetch(`${url}/rest/v1/rpc/supagate_hit_rate_limit`, {
      method: "POST",
      headers: { "content-type": "application/json", apikey: key ?? "", authorization: `Bearer ${key}` },
      body: JSON.stringify({ p_function: fn, p_subject: subject, p_nonce: probe?.nonce ?? null }),
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
