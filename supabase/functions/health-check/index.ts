// Reports whether the database answers and the job queue keeps up. Probed by the
// health workflow every 5 minutes; 503 tells it to open an incident.
import { json, serviceClient } from "../_shared/supabase.ts";

const OVERDUE_LIMIT = Number(Deno.env.get("HEALTH_MAX_OVERDUE_JOBS") ?? "25");
const DEAD_LETTER_LIMIT = Number(Deno.env.get("HEALTH_MAX_DEAD_LETTERS_24H") ?? "10");

Deno.serve(async (_req: Request) => {
  const started = performance.now();
  try {
    const { data, error } = await serviceClient()
      .schema("monitoring")
      .from("health_summary")
      .select("*")
      .single();
    if (error) throw error;
    const problems: string[] = [];
    if (data.jobs_overdue > OVERDUE_LIMIT) problems.push(`${data.jobs_overdue} overdue jobs`);
    if (data.dead_letters_24h > DEAD_LETTER_LIMIT) {
      problems.push(`${data.dead_letters_24h} dead letters in 24h`);
    }
    const status = problems.length === 0 ? "healthy" : "degraded";
    return json(
      { status, problems, summary: data, latency_ms: Math.round(performance.now() - started) },
      problems.length === 0 ? 200 : 503,
    );
  } catch (err) {
    return json({ status: "unhealthy", error: String(err) }, 503);
  }
});
