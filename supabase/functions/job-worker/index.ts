// Drains due background jobs: claims a batch, runs each handler, retries with backoff,
// and moves a job to the dead-letter queue after max_attempts.
import { json, serviceClient } from "../_shared/supabase.ts";

type Job = { id: number; job_type: string; payload: Record<string, unknown>; attempts: number; max_attempts: number };
type Handler = (job: Job) => Promise<void>;

const handlers: Record<string, Handler> = {
  refresh_metrics: async () => {
    const { error } = await serviceClient().schema("analytics").rpc("refresh_latest_unified_metrics");
    if (error) throw error;
  },
  cleanup_rate_limits: async () => {
    const { error } = await serviceClient().rpc("cleanup_rate_limits");
    if (error) throw error;
  },
};

const BATCH = Number(Deno.env.get("JOB_WORKER_BATCH") ?? "20");

Deno.serve(async (_req: Request) => {
  const db = serviceClient();
  const { data: jobs, error } = await db
    .from("background_jobs")
    .select("id, job_type, payload, attempts, max_attempts")
    .eq("status", "pending")
    .lte("run_at", new Date().toISOString())
    .order("run_at")
    .limit(BATCH);
  if (error) return json({ error: error.message }, 500);

  const results = { succeeded: 0, retried: 0, dead_lettered: 0 };
  for (const job of (jobs ?? []) as Job[]) {
    const attempts = job.attempts + 1;
    await db.from("background_jobs").update({ status: "running", locked_at: new Date().toISOString(), attempts })
      .eq("id", job.id).eq("status", "pending");
    try {
      const handler = handlers[job.job_type];
      if (!handler) throw new Error(`no handler for job type ${job.job_type}`);
      await handler(job);
      await db.from("background_jobs").update({ status: "succeeded", finished_at: new Date().toISOString() })
        .eq("id", job.id);
      results.succeeded++;
    } catch (err) {
      if (attempts >= job.max_attempts) {
        await db.from("background_jobs_dlq").insert({
          job_id: job.id, job_type: job.job_type, payload: job.payload, error: String(err), attempts,
        });
        await db.from("background_jobs").update({ status: "failed", last_error: String(err) }).eq("id", job.id);
        results.dead_lettered++;
      } else {
        const backoffSeconds = Math.min(3600, 2 ** attempts * 15);
        await db.from("background_jobs").update({
          status: "pending",
          last_error: String(err),
          run_at: new Date(Date.now() + backoffSeconds * 1000).toISOString(),
        }).eq("id", job.id);
        results.retried++;
      }
    }
  }
  return json(results);
});
