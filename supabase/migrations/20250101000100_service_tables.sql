-- Tables only the service role touches (edge functions with the service key, cron).
-- RLS is on with no policy, so the Data API denies every client role; the grants are
-- revoked as well, so a policy added by mistake later still exposes nothing.

-- gate:allow rls-no-policy raw wearable payloads are written and read by the service role only
create table public.terra_webhooks_raw (
  id bigint generated always as identity primary key,
  received_at timestamptz not null default now(),
  event_type text not null,
  terra_user_id text,
  signature text not null,
  payload jsonb not null,
  processed_at timestamptz
);

-- gate:allow rls-no-policy the job queue is drained by the job-worker function with the service key
create table public.background_jobs (
  id bigint generated always as identity primary key,
  job_type text not null,
  payload jsonb not null default '{}'::jsonb,
  status text not null default 'pending'
    check (status in ('pending', 'running', 'succeeded', 'failed')),
  attempts integer not null default 0,
  max_attempts integer not null default 5 check (max_attempts > 0),
  run_at timestamptz not null default now(),
  locked_at timestamptz,
  last_error text,
  created_at timestamptz not null default now(),
  finished_at timestamptz
);

-- gate:allow rls-no-policy dead letters are inspected by operators with the service key
create table public.background_jobs_dlq (
  id bigint generated always as identity primary key,
  job_id bigint not null,
  job_type text not null,
  payload jsonb not null,
  error text not null,
  attempts integer not null,
  failed_at timestamptz not null default now()
);

-- gate:allow rls-no-policy rate limit counters belong to the edge functions
create table public.rate_limits (
  key text not null,
  window_start timestamptz not null,
  request_count integer not null default 0,
  primary key (key, window_start)
);

-- gate:allow rls-no-policy cold storage for old events, service role only
create table public.engagement_events_archive (
  id bigint primary key,
  user_id uuid not null,
  event_type text not null,
  payload jsonb not null,
  occurred_at timestamptz not null,
  archived_at timestamptz not null default now()
);

alter table public.terra_webhooks_raw enable row level security;
alter table public.background_jobs enable row level security;
alter table public.background_jobs_dlq enable row level security;
alter table public.rate_limits enable row level security;
alter table public.engagement_events_archive enable row level security;

revoke all on public.terra_webhooks_raw, public.background_jobs, public.background_jobs_dlq,
  public.rate_limits, public.engagement_events_archive from anon, authenticated;

create index background_jobs_due_idx on public.background_jobs (run_at) where status = 'pending';
create index terra_webhooks_raw_unprocessed_idx
  on public.terra_webhooks_raw (received_at) where processed_at is null;

-- Drops counters whose window ended more than an hour ago; returns how many went.
create function public.cleanup_rate_limits(retention interval default interval '1 hour')
returns integer
language plpgsql
set search_path = ''
as $$
declare
  removed integer;
begin
  delete from public.rate_limits where window_start < now() - retention;
  get diagnostics removed = row_count;
  return removed;
end;
$$;
revoke execute on function public.cleanup_rate_limits(interval) from public, anon, authenticated;
grant execute on function public.cleanup_rate_limits(interval) to service_role;
