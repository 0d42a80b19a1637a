// Receives Terra wearable webhooks. Terra sends no Supabase JWT (verify_jwt = false in
// config.toml), so the request must carry a valid HMAC-SHA256 signature instead:
// header `terra-signature: t=<unix seconds>,v1=<hex hmac of "<t>.<raw body>">`.
import { json, serviceClient } from "../_shared/supabase.ts";
import { rateLimit } from "../_shared/supagate_rate_limit.ts";

const TOLERANCE_SECONDS = 300;
const encoder = new TextEncoder();

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(message));
  return Array.from(new Uint8Array(mac)).map((b) => b.toString(16).padStart(2, "0")).join("");
}

function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export async function verifySignature(header: string | null, body: string, secret: string, now: number) {
  if (!header) return false;
  const parts = Object.fromEntries(header.split(",").map((p) => p.trim().split("=", 2)));
  const timestamp = Number(parts["t"]);
  if (!Number.isFinite(timestamp) || Math.abs(now - timestamp) > TOLERANCE_SECONDS) return false;
  const expected = await hmacHex(secret, `${parts["t"]}.${body}`);
  return typeof parts["v1"] === "string" && timingSafeEqual(expected, parts["v1"]);
}

Deno.serve(async (req: Request) => {
  if (req.method !== "POST") return json({ error: "method not allowed" }, 405);
  // Before the signature check: a flood of forged requests is refused cheaply, in every isolate.
  const limited = await rateLimit(req, "webhook-terra");
  if (limited instanceof Response) return limited;
  const secret = Deno.env.get("TERRA_WEBHOOK_SECRET");
  if (!secret) return json({ error: "webhook secret not configured" }, 500);
  const body = await req.text();
  const signature = req.headers.get("terra-signature");
  if (!(await verifySignature(signature, body, secret, Math.floor(Date.now() / 1000)))) {
    return json({ error: "invalid signature" }, 401);
  }
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(body);
  } catch {
    return json({ error: "body is not JSON" }, 400);
  }
  const user = (payload["user"] ?? {}) as Record<string, unknown>;
  const { error } = await serviceClient().from("terra_webhooks_raw").insert({
    event_type: String(payload["type"] ?? "unknown"),
    terra_user_id: user["user_id"] ? String(user["user_id"]) : null,
    signature: signature!,
    payload,
  });
  if (error) return json({ error: "failed to store webhook" }, 500);
  return json({ received: true }, 202);
});
