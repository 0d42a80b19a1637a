// Computes today's momentum score for the calling user from the last 7 days of
// engagement events, and stores it with the service key (clients cannot write scores).
import { createClient } from "npm:@supabase/supabase-js@2.45.4";
import { json, serviceClient } from "../_shared/supabase.ts";

export type MomentumState = "rising" | "steady" | "needs_care";

// Weighted activity over a week, 0-100; recent days weigh more.
export function momentumScore(dailyCounts: number[]): number {
  const weights = [0.25, 0.2, 0.16, 0.13, 0.11, 0.08, 0.07];
  const raw = dailyCounts.slice(0, 7).reduce((sum, n, i) => sum + Math.min(n, 10) * 10 * weights[i], 0);
  return Math.round(Math.min(100, raw) * 100) / 100;
}

export function momentumState(today: number, previous: number | null): MomentumState {
  if (previous === null) return today >= 50 ? "steady" : "needs_care";
  if (today - previous >= 5) return "rising";
  if (today < 40 || previous - today >= 15) return "needs_care";
  return "steady";
}

Deno.serve(async (req: Request) => {
  const auth = req.headers.get("Authorization");
  if (!auth) return json({ error: "missing bearer token" }, 401);
  const asUser = createClient(Deno.env.get("SUPABASE_URL")!, Deno.env.get("SUPABASE_ANON_KEY")!, {
    global: { headers: { Authorization: auth } },
    auth: { persistSession: false },
  });
  const { data: userData, error: userError } = await asUser.auth.getUser();
  if (userError || !userData.user) return json({ error: "invalid token" }, 401);
  const userId = userData.user.id;

  // Read through the user's own client: RLS guarantees only their events come back.
  const since = new Date(Date.now() - 7 * 86400_000).toISOString();
  const { data: events, error } = await asUser
    .from("engagement_events").select("occurred_at").gte("occurred_at", since);
  if (error) return json({ error: error.message }, 500);

  const counts = new Array(7).fill(0);
  for (const e of events ?? []) {
    const age = Math.floor((Date.now() - Date.parse(e.occurred_at)) / 86400_000);
    if (age >= 0 && age < 7) counts[age]++;
  }
  const score = momentumScore(counts);
  const { data: prev } = await asUser.from("daily_engagement_scores").select("score")
    .order("date", { ascending: false }).limit(1).maybeSingle();
  const state = momentumState(score, prev ? Number(prev.score) : null);

  const today = new Date().toISOString().slice(0, 10);
  const { error: writeError } = await serviceClient().from("daily_engagement_scores").upsert(
    { user_id: userId, date: today, score, momentum_state: state },
    { onConflict: "user_id,date" },
  );
  if (writeError) return json({ error: "failed to store score" }, 500);
  return json({ date: today, score, momentum_state: state });
});
