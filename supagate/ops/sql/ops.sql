-- supagate operations schema, version 1: alert evaluation inside Postgres (pg_cron calls
-- ops.evaluate_alerts() every minute), the notification outbox, the scheduler heartbeat and
-- the maintenance-job wrapper. `supagate ops init` copies this file into a migration, so it
-- is app SQL: the Supabase CLI sees it and supagate's gates check it like any other.
create schema if not exists ops;
revoke all on schema ops from public;

-- pg_cron runs the evaluator and the maintenance jobs. It can live in one database only
-- (cron.database_name; `postgres` on Supabase): enable it there, leave other databases be.
do $$
begin
  if not exists (select 1 from pg_extension where extname = 'pg_cron')
     and exists (select 1 from pg_available_extensions where name = 'pg_cron')
     and current_database() = coalesce(nullif(current_setting('cron.database_name', true), ''), 'postgres') then
    create extension pg_cron;
  end if;
end
$$;

create function ops.version() returns integer language sql immutable set search_path = '' as $$ select 2 $$;

-- The evaluation time: `supagate alerts evaluate --at` and the tests set ops.eval_at so
-- every kind and the state machine see the same clock; pg_cron leaves it unset (now()).
create function ops.now() returns timestamptz language sql stable set search_path = '' as $$
  select coalesce(nullif(current_setting('ops.eval_at', true), '')::timestamptz, now())
$$;

create table ops.alert_rules (
  name text primary key check (name ~ '^[a-z0-9][a-z0-9-]*$'),
  kind text not null,
  params jsonb not null default '{}',
  threshold numeric not null,
  comparison text not null default 'above' check (comparison in ('above', 'below')),
  for_interval interval not null default '0',
  keep_firing_for interval not null default '0',
  repeat_interval interval not null default '4 hours',
  severity text not null default 'warning' check (severity in ('critical', 'warning', 'info')),
  notify text[] not null default '{}',
  updated_at timestamptz not null default now()
);

create table ops.alert_state (
  rule text primary key,
  state text not null default 'inactive' check (state in ('inactive', 'pending', 'firing')),
  active_since timestamptz,
  fired_at timestamptz,
  keep_firing_since timestamptz,
  resolved_at timestamptz,
  last_notified_at timestamptz,
  last_eval timestamptz,
  value numeric,
  error text
);

-- Channel secrets (webhook URLs, HMAC keys) are never stored here: only their names, whose
-- values live in Supabase Vault (vault.decrypted_secrets) or the workflow's secrets.
create table ops.alert_channels (
  name text primary key,
  type text not null check (type in ('webhook', 'slack', 'githubIssue')),
  secret_name text,
  sign_with text,
  labels text[] not null default '{}'
);

create table ops.notifications (
  id bigserial primary key,
  rule text not null,
  channel text not null,
  event text not null check (event in ('firing', 'repeat', 'resolved')),
  payload jsonb not null,
  idempotency_key text not null unique,
  created_at timestamptz not null default now(),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  delivered_at timestamptz,
  last_error text
);
create index notifications_undelivered_idx on ops.notifications (next_attempt_at) where delivered_at is null;

-- Cumulative counters sampled at each evaluation; a windowed rate is the difference between
-- the sample at the evaluation time and the one `window` earlier (pg_stat_statements and
-- pg_stat_database keep totals only).
create table ops.counter_samples (
  metric text not null,
  key text not null,
  taken_at timestamptz not null,
  value numeric not null,
  primary key (metric, key, taken_at)
);
create index counter_samples_time_idx on ops.counter_samples (metric, taken_at);

create table ops.heartbeat (
  source text primary key,
  beat_at timestamptz not null
);

create table ops.job_events (
  id bigserial primary key,
  job text not null,
  event text not null,
  at timestamptz not null default clock_timestamp(),
  detail text
);

create function ops.beat(p_source text) returns void language sql set search_path = '' as $$
  insert into ops.heartbeat (source, beat_at) values (p_source, ops.now())
  on conflict (source) do update set beat_at = excluded.beat_at
$$;

create function ops._seconds(p interval) returns numeric language sql immutable set search_path = '' as $$
  select extract(epoch from p)::numeric
$$;

create function ops._param_interval(p_params jsonb, p_key text, p_default text) returns interval
language sql immutable set search_path = '' as $$ select coalesce(p_params ->> p_key, p_default)::interval $$;

-- Which sampled counters each windowed kind reads: the one list sampling, purging and the
-- evaluator's error reporting go by.
create function ops.counter_metrics() returns table (kind text, metric text)
language sql immutable set search_path = '' as $$
  values ('slowQueries', 'stmt_calls'), ('slowQueries', 'stmt_ms'), ('avgQueryTime', 'stmt_calls'),
         ('avgQueryTime', 'stmt_ms'), ('rollbackRatio', 'db_commit'), ('rollbackRatio', 'db_rollback'),
         ('sessionsFatal', 'db_sessions_fatal'), ('tableGrowth', 'table_bytes')
$$;

-- Samples the counters the given kinds read, at the evaluation time.
create function ops.sample_counters(p_kinds text[], p_tables text[]) returns void
language plpgsql set search_path = '' as $$
declare
  at timestamptz := ops.now();
  pss regclass;
  t text;
begin
  if exists (select 1 from ops.counter_metrics() m where m.kind = any(p_kinds) and m.metric like 'stmt\_%') then
    select format('%I.pg_stat_statements', n.nspname)::regclass into pss
      from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pg_stat_statements';
    if pss is null then
      raise exception 'pg_stat_statements is not installed in this database (create extension pg_stat_statements with schema extensions)';
    end if;
    execute format($q$
      insert into ops.counter_samples (metric, key, taken_at, value)
      select m.metric, s.queryid::text, $1, case m.metric when 'stmt_calls' then sum(s.calls) else sum(s.total_exec_time) end
        from %s s cross join (values ('stmt_calls'), ('stmt_ms')) m(metric)
       where s.dbid = (select oid from pg_database where datname = current_database()) and s.queryid is not null
       group by m.metric, s.queryid
      on conflict (metric, key, taken_at) do update set value = excluded.value$q$, pss) using at;
  end if;
  if exists (select 1 from ops.counter_metrics() m where m.kind = any(p_kinds) and m.metric like 'db\_%') then
    insert into ops.counter_samples (metric, key, taken_at, value)
    select m.metric, '', at, m.value
      from pg_stat_database d,
           lateral (values ('db_commit', d.xact_commit::numeric), ('db_rollback', d.xact_rollback::numeric),
                           ('db_sessions_fatal', d.sessions_fatal::numeric)) m(metric, value)
     where d.datname = current_database()
    on conflict (metric, key, taken_at) do update set value = excluded.value;
  end if;
  foreach t in array coalesce(p_tables, '{}') loop
    insert into ops.counter_samples (metric, key, taken_at, value)
    values ('table_bytes', t, at, pg_total_relation_size(t::regclass))
    on conflict (metric, key, taken_at) do update set value = excluded.value;
  end loop;
end;
$$;

-- Per key: the sample at the evaluation time minus the latest one at least `window` older
-- (or, while the history is shorter than the window, the oldest one). A key first seen in
-- the window counts from zero; a counter that went down was reset and counts from zero too.
-- No earlier sample at all: no rows (no data yet).
create function ops.window_deltas(p_metric text, p_window interval)
returns table (key text, delta numeric, base numeric, current numeric)
language sql stable set search_path = '' as $$
  with now_ as (select ops.now() as at),
  base_time as (
    select coalesce(
      (select max(taken_at) from ops.counter_samples, now_ where metric = p_metric and taken_at <= now_.at - p_window),
      (select min(taken_at) from ops.counter_samples, now_ where metric = p_metric and taken_at < now_.at)) as at
  )
  select c.key, case when b.value is null or c.value < b.value then c.value else c.value - b.value end, b.value, c.value
    from ops.counter_samples c cross join now_ cross join base_time
    left join ops.counter_samples b on b.metric = c.metric and b.key = c.key and b.taken_at = base_time.at
   where c.metric = p_metric and c.taken_at = now_.at and base_time.at is not null
$$;

create function ops._cron_job_ids(p_params jsonb) returns bigint[]
language plpgsql stable set search_path = '' as $$
declare
  ids bigint[];
begin
  if to_regclass('cron.job') is null then
    raise exception 'pg_cron is not installed in this database: cron rules cannot be evaluated here';
  end if;
  if p_params ? 'job' then
    select array_agg(jobid) into ids from cron.job where jobname = p_params ->> 'job';
    if ids is null then
      raise exception 'no pg_cron job named %', p_params ->> 'job';
    end if;
    return ids;
  end if;
  select array_agg(jobid) into ids from cron.job;
  return coalesce(ids, '{}');
end;
$$;

-- The value of one rule at the evaluation time; null means no data (the rule is not active).
create function ops.measure(p_kind text, p_params jsonb) returns numeric
language plpgsql set search_path = public, extensions as $$
declare
  at timestamptz := ops.now();
  w interval := ops._param_interval(p_params, 'window', '15 minutes');
  result numeric;
  calls numeric;
  total numeric;
  query text;
begin
  case p_kind
  when 'overdueJobs' then
    execute format('select count(*) from %s where %I = $1 and %I < $2',
                   coalesce(p_params ->> 'table', 'public.background_jobs')::regclass,
                   coalesce(p_params ->> 'statusColumn', 'status'), coalesce(p_params ->> 'dueColumn', 'run_at'))
      into result using coalesce(p_params ->> 'pendingValue', 'pending'),
                        at - ops._param_interval(p_params, 'grace', '15 minutes');
  when 'deadLetters' then
    execute format('select count(*) from %s where %I > $1 and %I <= $2',
                   coalesce(p_params ->> 'table', 'public.background_jobs_dlq')::regclass,
                   coalesce(p_params ->> 'timeColumn', 'failed_at'), coalesce(p_params ->> 'timeColumn', 'failed_at'))
      into result using at - ops._param_interval(p_params, 'window', '24 hours'), at;
  when 'slowQueries' then
    select max(t.delta / c.delta) into result
      from ops.window_deltas('stmt_calls', w) c join ops.window_deltas('stmt_ms', w) t using (key)
     where c.delta >= coalesce((p_params ->> 'minCalls')::numeric, 1) and c.delta > 0;
  when 'avgQueryTime' then
    select sum(delta) into calls from ops.window_deltas('stmt_calls', w);
    select sum(delta) into total from ops.window_deltas('stmt_ms', w);
    result := case when calls > 0 then total / calls end;
  when 'connectionSaturation' then
    select 100.0 * count(*) / current_setting('max_connections')::numeric into result
      from pg_stat_activity where backend_type = 'client backend';
  when 'sessionsFatal' then
    select delta into result from ops.window_deltas('db_sessions_fatal', w);
  when 'rollbackRatio' then
    select r.delta, r.delta + c.delta into result, total
      from ops.window_deltas('db_rollback', w) r, ops.window_deltas('db_commit', w) c;
    result := case when total >= coalesce((p_params ->> 'minTransactions')::numeric, 20)
                   then 100.0 * result / total end;
  when 'cronFailures' then
    select count(*) into result from cron.job_run_details
     where jobid = any(ops._cron_job_ids(p_params)) and status = 'failed'
       and start_time > at - ops._param_interval(p_params, 'window', '1 hour') and start_time <= at;
  when 'cronMissed' then
    -- seconds since the job last succeeded; a job that never succeeded counts from its
    -- first recorded run, or is overdue by definition when it never ran at all.
    select ops._seconds(at - coalesce(max(end_time) filter (where status = 'succeeded'), min(start_time)))
      into result from cron.job_run_details
     where jobid = any(ops._cron_job_ids(p_params)) and start_time <= at;
    result := coalesce(result, 1e12);
  when 'schedulerHeartbeat' then
    -- pg_cron running is not enough: the alert evaluation must also complete (it beats
    -- 'evaluator' last, so a failing or stalled one stops beating). The heartbeat job, not
    -- the evaluation, evaluates this rule; the evaluation's clock starts the first time it
    -- does (a deploy's first minute is no outage; an evaluation that never completes is).
    insert into ops.heartbeat (source, beat_at) values ('evaluator', at) on conflict do nothing;
    select case when count(*) = 2 then ops._seconds(at - min(beat_at)) end into result
      from ops.heartbeat where source in ('pg_cron', 'evaluator');
    result := coalesce(result, 1e12);  -- pg_cron never beat: as stale as it gets
  when 'externalWatch' then
    select ops._seconds(at - beat_at) into result from ops.heartbeat where source = 'workflow';
    if result is null then result := 1e12; end if;
  when 'tableGrowth' then
    -- a size is a gauge, not a counter: growth is current against base, shrinking included
    select case when d.base > 0 then 100.0 * (d.current - d.base) / d.base end into result
      from ops.window_deltas('table_bytes', w) d where d.key = p_params ->> 'table';
  when 'unusedIndexes' then
    select count(*) into result
      from pg_stat_user_indexes s join pg_index i on i.indexrelid = s.indexrelid
     where s.idx_scan = 0 and not i.indisunique and not i.indisprimary
       and s.schemaname not in ('pg_catalog', 'ops', 'cron')
       and pg_relation_size(s.indexrelid) >= coalesce((p_params ->> 'minSizeMb')::numeric, 10) * 1024 * 1024;
  when 'safetyFlags' then
    -- a superuser with session_replication_role = replica bypasses the guard trigger: this sees it
    select count(*) into result from ops.flags f
     where f.kind = 'safety' and (not f.enabled or f.paused or f.audience <> 'everyone' or f.steps[f.step + 1] <> 10000);
  when 'sql' then
    result := ops.sql_rule_value(p_params ->> 'query');  -- behind the boundary (end of this file)
  else
    raise exception 'unknown alert kind %', p_kind;
  end case;
  return result;
end;
$$;

-- One evaluation of every rule at `p_at` (default now()) with Prometheus's semantics:
-- inactive -> pending when the condition holds, pending -> firing once it has held for
-- `for`, firing -> inactive once it has been false for `keep_firing_for`; firing repeats
-- every `repeat_interval`. Rules come from ops.alert_rules, or from `p_rules` (the CLI
-- evaluates a stack file's rules); `p_only`/`p_skip` pick some by name, so that each sql
-- rule runs in a statement of its own, under its own statement timeout. A rule that fails
-- to evaluate keeps its state and reports the error: never a silent pass.
create function ops.evaluate_alerts(p_at timestamptz default null, p_rules jsonb default null,
                                    p_only text[] default null, p_skip text[] default null)
returns table (rule text, state text, value numeric, since timestamptz, error text)
language plpgsql set search_path = '' as $$
declare
  at timestamptz;
  rules jsonb;
  todo jsonb;
  r jsonb;
  s ops.alert_state;
  v numeric;
  failure text;
  active boolean;
  keep boolean;
  event text;
  kinds text[];
  tables text[];
begin
  perform set_config('ops.eval_at', coalesce(p_at, now())::text, true);
  at := ops.now();
  rules := coalesce(p_rules, (select coalesce(jsonb_agg(to_jsonb(x)), '[]') from ops.alert_rules x));
  todo := (select coalesce(jsonb_agg(e order by n), '[]') from jsonb_array_elements(rules) with ordinality t(e, n)
            where (p_only is null or e ->> 'name' = any(p_only)) and (p_skip is null or e ->> 'name' <> all(p_skip)));
  select array_agg(distinct e ->> 'kind'),
         array_agg(distinct e -> 'params' ->> 'table') filter (where e ->> 'kind' = 'tableGrowth')
    into kinds, tables
    from jsonb_array_elements(todo) e;
  begin
    perform ops.sample_counters(coalesce(kinds, '{}'), tables);
  exception when others then
    failure := sqlerrm;  -- reported by every rule that reads a counter, below
  end;
  -- Keep each metric's samples for the longest window that reads it (+10 min): per-statement
  -- samples are hundreds of rows a minute, and only the slow-query windows need them. Only
  -- the evaluation of the rest purges: a statement of one sql rule or of the heartbeat never
  -- waits for another's row locks.
  if p_only is null then
    with keep as (
      select m.metric, max(ops._param_interval(e -> 'params', 'window', '15 minutes')) as span
        from jsonb_array_elements(rules) e
        join ops.counter_metrics() m on m.kind = e ->> 'kind'
       group by m.metric)
    , gone as (
      delete from ops.counter_samples c using keep k
       where c.metric = k.metric and c.taken_at < at - k.span - interval '10 minutes')
    delete from ops.counter_samples c  -- metrics no rule reads any more
     where c.taken_at < at - interval '10 minutes' and not exists (select 1 from keep k where k.metric = c.metric);
  end if;

  for r in select * from jsonb_array_elements(todo) loop
    insert into ops.alert_state (rule) values (r ->> 'name') on conflict do nothing;
    select * into s from ops.alert_state x where x.rule = r ->> 'name' for update;
    v := null;
    s.error := null;
    event := null;
    begin
      if failure is not null and exists (select 1 from ops.counter_metrics() m where m.kind = r ->> 'kind') then
        raise exception '%', failure;
      end if;
      v := ops.measure(r ->> 'kind', coalesce(r -> 'params', '{}'));
    exception when others then
      s.error := sqlerrm;
    end;
    if s.error is null then
      active := v is not null and case r ->> 'comparison' when 'below' then v < (r ->> 'threshold')::numeric
                                                          else v > (r ->> 'threshold')::numeric end;
      keep := false;
      if active then
        s.keep_firing_since := null;
        if s.state = 'inactive' then
          s.state := 'pending';
          s.active_since := at;
        end if;
        if s.state = 'pending' and at - s.active_since >= coalesce((r ->> 'for_interval')::interval, '0') then
          s.state := 'firing';
          s.fired_at := at;
          event := 'firing';
        end if;
      else
        if s.state = 'firing' and coalesce((r ->> 'keep_firing_for')::interval, '0') > interval '0' then
          s.keep_firing_since := coalesce(s.keep_firing_since, at);
          keep := at - s.keep_firing_since < (r ->> 'keep_firing_for')::interval;
        end if;
        if not keep and s.state <> 'inactive' then
          if s.state = 'firing' then
            event := 'resolved';
          end if;
          s.state := 'inactive';
          s.resolved_at := at;
          s.keep_firing_since := null;
        end if;
      end if;
      if event is null and s.state = 'firing'
         and at - s.last_notified_at >= coalesce((r ->> 'repeat_interval')::interval, '4 hours') then
        event := 'repeat';
      end if;
      if event is not null then
        insert into ops.notifications (rule, channel, event, payload, idempotency_key)
        select r ->> 'name', c, event,
               jsonb_build_object('rule', r ->> 'name', 'event', event, 'kind', r ->> 'kind',
                                  'severity', coalesce(r ->> 'severity', 'warning'), 'value', v,
                                  'threshold', (r ->> 'threshold')::numeric,
                                  'comparison', coalesce(r ->> 'comparison', 'above'),
                                  'since', s.active_since, 'at', at, 'database', current_database()),
               concat_ws(':', r ->> 'name', event, extract(epoch from s.fired_at)::bigint,
                         case when event = 'repeat' then extract(epoch from at)::bigint end, c)
          from jsonb_array_elements_text(coalesce(r -> 'notify', '[]')) c
        on conflict (idempotency_key) do nothing;
        s.last_notified_at := at;
      end if;
      if s.state = 'inactive' then
        s.active_since := null;
      end if;
      s.value := v;
    end if;
    s.last_eval := at;
    update ops.alert_state x set state = s.state, active_since = s.active_since, fired_at = s.fired_at,
           keep_firing_since = s.keep_firing_since, resolved_at = s.resolved_at,
           last_notified_at = s.last_notified_at, last_eval = s.last_eval, value = s.value, error = s.error
     where x.rule = s.rule;
    rule := s.rule; state := s.state; value := s.value; error := s.error;
    since := case when s.state = 'inactive' then s.resolved_at else s.active_since end;
    return next;
  end loop;
end;
$$;

-- The wrapper pg_cron runs a maintenance job through: a run that finds the previous one
-- still going is skipped (pg_cron would queue it and replay it late) and recorded.
create function ops.run_job(p_name text, p_command text) returns text
language plpgsql security definer set search_path = '' as $$
begin
  -- The runner owns this function, so a job's SQL could ALTER it (SECURITY INVOKER: later jobs
  -- would run as their owner) or GRANT it to others; it cannot replace the body (no CREATE on
  -- ops). So the body refuses to run unless it still runs as the runner, with its settings,
  -- callable only by the runner's members.
  if current_user operator(pg_catalog.<>) 'supagate_job_runner'
     or exists (select from pg_catalog.pg_proc p
                where p.oid = 'ops.run_job(text, text)'::pg_catalog.regprocedure
                  and (not p.prosecdef or p.proconfig is distinct from array['search_path=""']
                       or exists (select from pg_catalog.aclexplode(p.proacl) a
                                  where a.grantee operator(pg_catalog.=) 0
                                     or not pg_catalog.pg_has_role(a.grantee, 'supagate_job_runner', 'MEMBER')))) then
    raise exception 'ops.run_job was altered (security, settings or grants): no job runs until supagate''s ops migration is applied again'
      using hint = 'a job that alters the function that runs jobs is an attack; see DESIGN.md, trust model';
  end if;
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('supagate-cron:' || p_name)) then
    insert into ops.job_events (job, event, detail) values (p_name, 'skipped', 'the previous run was still going');
    raise warning 'supagate: % skipped, the previous run was still going', p_name;
    return 'skipped';
  end if;
  execute p_command;  -- as supagate_job_runner, its owner (the job-runner boundary, below)
  return 'done';
end;
$$;

-- pg_cron keeps every run forever; the retention job calls this daily.
create function ops.purge_history(p_keep interval) returns bigint
language plpgsql set search_path = '' as $$
declare
  gone bigint := 0;
  n bigint;
begin
  if to_regclass('cron.job_run_details') is not null then
    delete from cron.job_run_details where end_time < now() - p_keep;
    get diagnostics gone = row_count;
  end if;
  delete from ops.notifications where delivered_at < now() - p_keep;
  get diagnostics n = row_count;
  delete from ops.job_events where at < now() - p_keep;
  return gone + n;
end;
$$;

-- ------------------------------------------------------------------ environment marker
-- What this database is, written by the stack (supabase:DatabaseEnvironment). Seeds check it
-- first, so a staging stack pointed at the prod URL by mistake is refused by the database.
-- Once production, always production.
create table ops.environment (
  id boolean primary key default true check (id),
  tier text not null check (tier in ('production', 'staging', 'development')),
  project_ref text not null,
  set_at timestamptz not null default now()
);

create function ops.environment_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if old.tier = 'production' and (tg_op = 'DELETE' or new.tier <> 'production') then
    raise exception 'database of project % is marked production; the mark never changes', old.project_ref;
  end if;
  return coalesce(new, old);
end;
$$;
create trigger environment_guard before update or delete on ops.environment
  for each row execute function ops.environment_guard();

create function ops.assert_not_production() returns void
language plpgsql stable set search_path = '' as $$
declare
  ref text;
begin
  select project_ref into ref from ops.environment where tier = 'production';
  if found then
    raise exception 'this database is project %''s production database: seed data never runs here', ref
      using hint = 'check the stack''s dbUrl: it points at production';
  end if;
end;
$$;

-- ------------------------------------------------------------------ rate limits
-- Limits per edge function (supabase:RateLimitPolicy writes them) and one atomic counter per
-- key and fixed window: every isolate of a function shares it, unlike an in-memory Map.
-- Keys are `<function>:<subject>`; the subject is the platform-set client address, the user,
-- or `probe:<run>` for a signed `supagate verify --rate-limit` request.
create table ops.rate_limit_policies (
  function text primary key,
  max_requests integer not null check (max_requests > 0),
  window_seconds integer not null check (window_seconds between 1 and 86400),
  key_by text not null default 'ip' check (key_by in ('ip', 'user')),
  probe boolean not null default false,
  -- Distinct keys one window may hold: a flood of new addresses cannot grow the table past
  -- it. At the cap a key the window has not seen yet is refused (429) until the window ends;
  -- keys already counted keep their quota.
  max_keys integer not null default 10000 check (max_keys > 0)
);

create table ops.rate_counters (
  key text not null,
  window_start timestamptz not null,
  request_count integer not null default 0,
  function text generated always as (split_part(key, ':', 1)) stored,
  primary key (key, window_start)
);
create index rate_counters_function_window on ops.rate_counters (function, window_start);

-- How many keys each function's window holds: the cap costs one row, not a count(*).
create table ops.rate_windows (
  function text not null,
  window_start timestamptz not null,
  keys integer not null check (keys >= 0),
  primary key (function, window_start)
);

-- Probe nonces already spent: a signed probe request is good once (a replay gets 429). Kept
-- ten minutes, well past the probe's 60 s validity plus any clock skew.
create table ops.rate_probe_nonces (
  nonce text primary key,
  used_at timestamptz not null default clock_timestamp()
);

create function ops.hit_rate_limit(p_function text, p_subject text, p_nonce text default null)
returns table (allowed boolean, remaining integer, reset_at timestamptz, max_requests integer, window_seconds integer)
language plpgsql security definer set search_path = '' as $$
declare
  policy ops.rate_limit_policies;
  started timestamptz;
  counter_key text := p_function || ':' || coalesce(p_subject, 'anonymous');
  counted integer;
  taken integer;
  fresh boolean := true;
begin
  select * into policy from ops.rate_limit_policies p where p.function = p_function;
  if not found then
    raise exception 'no rate limit policy for function %', p_function
      using hint = 'declare rateLimits.<function> in the stack';
  end if;
  started := to_timestamp(floor(extract(epoch from clock_timestamp()) / policy.window_seconds)
                          * policy.window_seconds);
  if p_nonce is not null then
    delete from ops.rate_probe_nonces n where n.used_at < clock_timestamp() - interval '10 minutes';
    insert into ops.rate_probe_nonces (nonce) values (p_nonce) on conflict do nothing;
    fresh := found;
  end if;
  if fresh then
    update ops.rate_counters c set request_count = c.request_count + 1
     where c.key = counter_key and c.window_start = started
    returning c.request_count into counted;
    if counted is null then
      -- A key this window has not seen: take one of its max_keys places, or be refused.
      insert into ops.rate_windows as w (function, window_start, keys) values (p_function, started, 1)
      on conflict (function, window_start) do update set keys = w.keys + 1 where w.keys < policy.max_keys
      returning w.keys into taken;
      if taken = 1 then  -- the window's first key: the function's earlier windows are over
        delete from ops.rate_counters c where c.function = p_function and c.window_start < started;
        delete from ops.rate_windows w where w.function = p_function and w.window_start < started;
      end if;
      if taken is not null then
        insert into ops.rate_counters as c (key, window_start, request_count) values (counter_key, started, 1)
        on conflict (key, window_start) do update set request_count = c.request_count + 1
        returning c.request_count into counted;
        if counted > 1 then  -- another session counted this key first: give the place back
          update ops.rate_windows w set keys = w.keys - 1 where w.function = p_function and w.window_start = started;
        end if;
      end if;
    end if;
  end if;
  -- A spent nonce, or a new key over the cap: refused without counting.
  allowed := coalesce(counted <= policy.max_requests, false);
  remaining := greatest(policy.max_requests - coalesce(counted, policy.max_requests), 0);
  reset_at := started + make_interval(secs => policy.window_seconds);
  max_requests := policy.max_requests;
  window_seconds := policy.window_seconds;
  return next;
end;
$$;

-- What edge functions call through the Data API (service role only): the limiter's RPC.
create function public.supagate_hit_rate_limit(p_function text, p_subject text, p_nonce text default null)
returns table (allowed boolean, remaining integer, reset_at timestamptz, max_requests integer, window_seconds integer)
language sql security definer set search_path = '' as $$
  select * from ops.hit_rate_limit(p_function, p_subject, p_nonce)
$$;
revoke execute on function public.supagate_hit_rate_limit(text, text, text) from public, anon, authenticated;
grant execute on function public.supagate_hit_rate_limit(text, text, text) to service_role;

-- ------------------------------------------------------------------ feature flags
-- Flags with staged rollouts (supabase:FeatureFlag writes them through ops.apply_flag) and
-- safety flags that stay on. Bucketing v1: the first 4 bytes of SHA-256(salt:subject) as an
-- unsigned big-endian integer, modulo 10000 (basis points): built-in sha256 here, Web Crypto
-- in Deno, hashlib in Python, with the same golden vectors in all three.
create table ops.flags (
  key text primary key check (key ~ '^[a-z][a-z0-9_]*$'),
  kind text not null default 'release' check (kind in ('release', 'safety', 'ops')),
  description text not null default '',
  salt text not null,
  bucketing_version smallint not null default 1 check (bucketing_version = 1),
  enabled boolean not null default false,
  audience text not null default 'everyone',
  steps integer[] not null default '{10000}',  -- basis points per step; -1 is "internal users only"
  step integer not null default 0,
  step_entered_at timestamptz not null default now(),
  soak interval not null default '0',
  paused boolean not null default false,
  advance text not null default 'manual' check (advance in ('manual', 'auto')),
  guards text[] not null default '{}',
  updated_at timestamptz not null default now(),
  check (step >= 0 and step < cardinality(steps))
);

create table ops.flag_members (
  flag_key text not null references ops.flags (key) on delete cascade,
  user_id uuid not null,
  primary key (flag_key, user_id)
);

create table ops.flag_events (
  id bigserial primary key,
  flag_key text not null,
  event text not null,
  at timestamptz not null default now(),
  detail text
);

create function ops.flag_bucket(p_salt text, p_subject text) returns integer
language sql immutable strict set search_path = '' as $$
  select (('x' || substr(encode(sha256(convert_to(p_salt || ':' || p_subject, 'UTF8')), 'hex'), 1, 8))::bit(32)::bigint
          % 10000)::integer
$$;

-- A safety flag is on for everyone, always: no pause, no partial step, no audience, no
-- delete, no change of kind. The provider and the pack refuse it first; this refuses it
-- for anyone with a SQL prompt (dropping this trigger is a destructive change for the gates).
create function ops.flags_safety_guard() returns trigger
language plpgsql set search_path = '' as $$
begin
  if tg_op in ('UPDATE', 'DELETE') and old.kind = 'safety' then
    if tg_op = 'DELETE' then
      raise exception 'safety flag % cannot be deleted', old.key
        using hint = 'safety flags stay on; retire one by a reviewed migration that first changes its kind';
    end if;
    if new.kind <> 'safety' then
      raise exception 'safety flag % cannot change kind', old.key;
    end if;
  end if;
  if tg_op in ('INSERT', 'UPDATE') and new.kind = 'safety'
     and (not new.enabled or new.paused or new.audience <> 'everyone' or new.steps[new.step + 1] <> 10000) then
    raise exception 'safety flag % must stay on for everyone (enabled, not paused, audience everyone, 100%%)', new.key;
  end if;
  return coalesce(new, old);
end;
$$;
create trigger flags_safety_guard before insert or update or delete on ops.flags
  for each row execute function ops.flags_safety_guard();

-- The salt is fixed at the first write: renaming, restarting or re-creating a rollout
-- never reshuffles who is in it.
create function ops.flags_salt_immutable() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.salt is distinct from old.salt or new.bucketing_version is distinct from old.bucketing_version then
    raise exception 'flag %: its salt and bucketing version never change (they decide who is in the rollout)', old.key;
  end if;
  return new;
end;
$$;
create trigger flags_salt_immutable before update on ops.flags
  for each row execute function ops.flags_salt_immutable();

-- One evaluation: (enabled, reason) with OpenFeature's reasons.
create function ops.flag_evaluate(p_key text, p_subject text, p_audience text default 'everyone',
                                  out enabled boolean, out reason text)
language plpgsql stable security definer set search_path = '' as $$
declare
  f ops.flags;
  bp integer;
begin
  select * into f from ops.flags where key = p_key;
  if not found then
    enabled := false; reason := 'ERROR'; return;  -- FLAG_NOT_FOUND: the caller's code default applies
  end if;
  if f.kind = 'safety' then
    enabled := true; reason := 'STATIC'; return;
  end if;
  if not f.enabled or f.paused then
    enabled := false; reason := 'DISABLED'; return;
  end if;
  if f.audience <> 'everyone' and p_audience is distinct from f.audience then
    enabled := false; reason := 'TARGETING_MATCH'; return;
  end if;
  if p_subject is not null and p_subject <> '' and exists (
       select 1 from ops.flag_members m where m.flag_key = f.key and m.user_id::text = p_subject) then
    enabled := true; reason := 'TARGETING_MATCH'; return;
  end if;
  bp := f.steps[f.step + 1];
  if bp >= 10000 then
    enabled := true; reason := 'STATIC'; return;
  end if;
  if bp <= 0 or p_subject is null or p_subject = '' then
    -- internal-only steps, and signed-out callers at a partial step (no shared anonymous bucket)
    enabled := false; reason := 'DEFAULT'; return;
  end if;
  enabled := ops.flag_bucket(f.salt, p_subject) < bp;
  reason := 'SPLIT';
end;
$$;

create function ops.flags_for(p_subject text, p_audience text default 'everyone')
returns table (key text, enabled boolean, reason text, kind text)
language sql stable security definer set search_path = '' as $$
  select f.key, e.enabled, e.reason, f.kind
    from ops.flags f, lateral ops.flag_evaluate(f.key, p_subject, p_audience) e
   order by f.key
$$;

-- The one place the rollout rules are enforced (the provider's preview runs it with
-- p_dry_run, `pulumi up` for real): forward one step at a time, only after the soak
-- (database clock) and with no guard rule firing; back or pause at any time. Returns what
-- it did. Auto-advanced flags are moved by ops.advance_rollouts, and a stack update never
-- fights the position the database reached.
create function ops.apply_flag(p jsonb, p_dry_run boolean default false) returns text
language plpgsql set search_path = '' as $$
declare
  f ops.flags;
  want integer := (p ->> 'step')::integer;
  new_steps integer[] := array(select jsonb_array_elements_text(p -> 'steps')::integer);
  firing text[];
  waited interval;
  outcome text;
begin
  select * into f from ops.flags where key = p ->> 'key' for update;
  if not found then
    outcome := format('create %s at step %s', p ->> 'key', want);
    if not p_dry_run then
      insert into ops.flags (key, kind, description, salt, enabled, audience, steps, step, soak, paused, advance, guards)
      values (p ->> 'key', p ->> 'kind', coalesce(p ->> 'description', ''), coalesce(p ->> 'salt', p ->> 'key'),
              (p ->> 'enabled')::boolean, coalesce(p ->> 'audience', 'everyone'), new_steps, want,
              (p ->> 'soak')::interval, (p ->> 'paused')::boolean, p ->> 'advance',
              array(select jsonb_array_elements_text(coalesce(p -> 'guards', '[]'))));
      if p ? 'internal_users' then
        insert into ops.flag_members (flag_key, user_id)
        select p ->> 'key', u::uuid from jsonb_array_elements_text(p -> 'internal_users') u;
      end if;
    end if;
    return outcome;
  end if;
  if f.steps is distinct from new_steps and want > 0 and want >= f.step then
    raise exception 'flag %: its plan changed; a new plan starts at step 0 or goes back, not forward', f.key;
  end if;
  if p ->> 'advance' = 'auto' and f.advance = 'auto' then
    want := f.step;  -- the database owns the position of an auto rollout
  elsif want > f.step + 1 then
    raise exception 'flag %: step % -> % skips a step; move one step at a time', f.key, f.step, want;
  elsif want = f.step + 1 then
    waited := now() - f.step_entered_at;
    if waited < (p ->> 'soak')::interval then
      raise exception 'flag %: step % can start at % (soak % from step % entered %); % left', f.key, want,
        to_char((f.step_entered_at + (p ->> 'soak')::interval) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"'),
        p ->> 'soak', f.step, to_char(f.step_entered_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"'),
        date_trunc('minute', (p ->> 'soak')::interval - waited);
    end if;
    select array_agg(s.rule order by s.rule) into firing from ops.alert_state s
     where s.rule = any(array(select jsonb_array_elements_text(coalesce(p -> 'guards', '[]')))) and s.state = 'firing';
    if firing is not null then
      raise exception 'flag %: step % waits: guard rule(s) % firing', f.key, want, array_to_string(firing, ', ');
    end if;
  end if;
  outcome := case when want > f.step then format('advance %s to step %s', f.key, want)
                  when want < f.step then format('step %s back to step %s', f.key, want)
                  else format('keep %s at step %s', f.key, want) end;
  if not p_dry_run then
    update ops.flags set kind = p ->> 'kind', description = coalesce(p ->> 'description', ''),
           enabled = (p ->> 'enabled')::boolean, audience = coalesce(p ->> 'audience', 'everyone'), steps = new_steps,
           step = want, step_entered_at = case when want <> f.step then now() else step_entered_at end,
           soak = (p ->> 'soak')::interval, paused = (p ->> 'paused')::boolean, advance = p ->> 'advance',
           guards = array(select jsonb_array_elements_text(coalesce(p -> 'guards', '[]'))), updated_at = now()
     where key = f.key;
    if want <> f.step then
      insert into ops.flag_events (flag_key, event, detail) values (f.key, 'step', outcome);
    end if;
  end if;
  if not p_dry_run and p ? 'internal_users' then  -- the stack's internal users, exactly
    delete from ops.flag_members m where m.flag_key = p ->> 'key'
       and m.user_id::text <> all(array(select jsonb_array_elements_text(p -> 'internal_users')));
    insert into ops.flag_members (flag_key, user_id)
    select p ->> 'key', u::uuid from jsonb_array_elements_text(p -> 'internal_users') u
    on conflict do nothing;
  end if;
  return outcome;
end;
$$;

-- Auto rollouts: pg_cron calls this every 5 minutes. A flag whose guard fires steps back
-- one step (and says so); one whose soak elapsed with quiet guards advances one step.
create function ops.advance_rollouts(p_at timestamptz default null) returns table (flag text, event text)
language plpgsql set search_path = '' as $$
declare
  f ops.flags;
  at timestamptz := coalesce(p_at, now());
begin
  for f in select * from ops.flags x where x.advance = 'auto' and x.enabled and not x.paused and x.kind <> 'safety'
             for update loop
    if exists (select 1 from ops.alert_state s where s.rule = any(f.guards) and s.state = 'firing') then
      if f.step > 0 then
        update ops.flags set step = f.step - 1, step_entered_at = at where key = f.key;
        flag := f.key; event := format('stepped back to step %s: a guard is firing', f.step - 1);
        insert into ops.flag_events (flag_key, event, detail, at) values (f.key, 'step-back', event, at);
        return next;
      end if;
    elsif f.step + 1 < cardinality(f.steps) and at - f.step_entered_at >= f.soak then
      update ops.flags set step = f.step + 1, step_entered_at = at where key = f.key;
      flag := f.key; event := format('advanced to step %s', f.step + 1);
      insert into ops.flag_events (flag_key, event, detail, at) values (f.key, 'step', event, at);
      return next;
    end if;
  end loop;
end;
$$;

revoke all on all tables in schema ops from public;
revoke execute on all functions in schema ops from public;
grant usage on schema ops to service_role;
grant select on all tables in schema ops to service_role;

-- ------------------------------------------------------------------ who reports deliveries (issue 23, item 7)
-- Saying a notification went out, and checking in for the health workflow, belong to the roles
-- that deliver, never to service_role: every edge function holds it, and any of them could mark
-- a page delivered without sending it, or fake the workflow's check-in. Each role answers only
-- for the rows of the channels it delivers; ops.alert_channels, which only the stack writes,
-- says which type a channel is.
--   supagate_watcher: the health workflow's issue script (githubIssue rows) and its check-in;
--   supagate_sender:  the sender of `supagate ops watch` (webhook and slack rows; it also gives
--                     up on rows of a channel no stack declares, which nobody can deliver).
-- Grant them to the login the workflow uses: grant supagate_watcher, supagate_sender to verifier;
do $$
begin
  if not exists (select from pg_roles where rolname = 'supagate_watcher') then
    create role supagate_watcher nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'supagate_sender') then
    create role supagate_sender nologin;
  end if;
end
$$;

-- Refuses (42501) when any of the rows belongs to a channel whose type is not in p_types
-- (a channel ops.alert_channels does not declare counts as type 'undeclared').
create function ops._require_channel_types(p_ids bigint[], p_types text[]) returns void
language plpgsql stable set search_path = '' as $$
declare
  foreign_rows text;
begin
  select string_agg(format('%s (channel %s, %s)', n.id, n.channel, coalesce(c.type, 'undeclared')), ', '
                    order by n.id)
    into foreign_rows
    from ops.notifications n left join ops.alert_channels c on c.name = n.channel
   where n.id = any(p_ids) and coalesce(c.type, 'undeclared') <> all(p_types);
  if foreign_rows is not null then
    raise exception 'refused: this role does not deliver notification %', foreign_rows
      using errcode = 'insufficient_privilege',
            hint = 'each channel type has its deliverer: githubIssue supagate_watcher, webhook and slack supagate_sender';
  end if;
end;
$$;

create function ops.check_in() returns void
language sql security definer set search_path = '' as $$ select ops.beat('workflow') $$;

-- The issue script opened, commented or closed the issues of these notifications.
create function ops.ack_notifications(p_ids bigint[]) returns integer
language plpgsql security definer set search_path = '' as $$
declare
  done integer;
begin
  perform ops._require_channel_types(p_ids, array['githubIssue']);
  update ops.notifications set delivered_at = now(), attempts = attempts + 1
   where id = any(p_ids) and delivered_at is null;
  get diagnostics done = row_count;
  return done;
end;
$$;

-- The sender's receiver answered 2xx.
create function ops.record_sent(p_id bigint) returns void
language plpgsql security definer set search_path = '' as $$
begin
  perform ops._require_channel_types(array[p_id], array['webhook', 'slack']);
  update ops.notifications set delivered_at = now(), attempts = attempts + 1
   where id = p_id and delivered_at is null;
end;
$$;

-- A failed delivery: the error (never a URL: the sender redacts it) and when to try again;
-- `infinity` gives up (the row stays, undelivered, for `supagate ops status`).
create function ops.record_attempt(p_id bigint, p_error text, p_next_attempt_at timestamptz) returns void
language plpgsql security definer set search_path = '' as $$
begin
  perform ops._require_channel_types(array[p_id], array['webhook', 'slack', 'undeclared']);
  update ops.notifications set attempts = attempts + 1, last_error = left(p_error, 500),
         next_attempt_at = p_next_attempt_at
   where id = p_id and delivered_at is null;
end;
$$;

revoke execute on function ops._require_channel_types(bigint[], text[]), ops.check_in(),
  ops.ack_notifications(bigint[]), ops.record_sent(bigint), ops.record_attempt(bigint, text, timestamptz)
  from public, anon, authenticated, service_role;
grant usage on schema ops to supagate_watcher, supagate_sender;
grant select on ops.notifications, ops.alert_channels, ops.heartbeat to supagate_watcher, supagate_sender;
grant execute on function ops.version() to supagate_watcher, supagate_sender;
grant execute on function ops.check_in(), ops.ack_notifications(bigint[]) to supagate_watcher;
grant execute on function ops.record_sent(bigint), ops.record_attempt(bigint, text, timestamptz)
  to supagate_sender;
-- ------------------------------------------------------------------ end of: who reports deliveries

-- ================================================================== alert-rule boundary
-- Custom `sql` alert rules come from stack files, which no migration gate reads, so they
-- cross a privilege boundary instead of a list of forbidden names. A rule runs as
-- supagate_alert_reader: it logs in nowhere, belongs to no role, and reads only what a
-- migration grants it (`grant select on <table> to supagate_alert_reader`, and under row
-- level security a select policy for it). It runs inside a SECURITY DEFINER function that
-- role owns, where PostgreSQL refuses SET ROLE and SET SESSION AUTHORIZATION (the rule
-- cannot become the evaluator's session user again), in a READ ONLY subtransaction that is
-- always rolled back (what a read-only transaction still allows, a large object, goes with
-- it), under a statement timeout of its own: each sql rule is a statement of its own in
-- the evaluation (supagate/ops/cron.py). `supagate plan` and the policy pack run every rule
-- this way in the shadow database before anything is deployed.
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'supagate_alert_reader') then
    create role supagate_alert_reader nologin noinherit;
  end if;
  if not pg_catalog.pg_has_role(current_user, 'supagate_alert_reader', 'MEMBER') then
    execute format('grant supagate_alert_reader to %I', current_user);  -- PostgreSQL 15: to hand it a function
  end if;
end
$$;
alter default privileges in schema ops revoke execute on functions from public;
grant usage on schema ops to supagate_alert_reader;  -- for the evaluation clock only:
grant execute on function ops.now() to supagate_alert_reader;

-- gate:allow destructive-unapproved the alert-rule reader owns the one function rules run in: running inside a definer function is what keeps a rule from SET ROLE
create function ops.read_as_alert_reader(p_query text) returns numeric
language plpgsql security definer set search_path = public, pg_temp as $$
declare
  result numeric;
begin
  perform pg_catalog.set_config('transaction_read_only', 'on', true);
  execute p_query into result;
  -- the one write a read-only transaction lets through (the caller rolls it back anyway)
  if exists (select 1 from pg_catalog.pg_largeobject_metadata where lomowner = current_user::regrole) then
    raise exception 'the query creates a large object: an alert rule writes nothing';
  end if;
  -- The value travels to webhooks and issues: six significant digits carry a threshold
  -- decision, not rows of a health table encoded into one long number.
  if result is not null and result operator(pg_catalog.<>) 0 then
    result := pg_catalog.round(result, 5 - pg_catalog.floor(pg_catalog.log(pg_catalog.abs(result)))::int);
  end if;
  return result;
end;
$$;
grant create on schema ops to supagate_alert_reader;  -- ALTER ... OWNER TO needs it; not kept
alter function ops.read_as_alert_reader(text) owner to supagate_alert_reader;
revoke create on schema ops from supagate_alert_reader;
revoke execute on function ops.read_as_alert_reader(text) from public;

-- What makes the reader less than that boundary (someone altered it, or a function that
-- reaches outside the transaction is open to everyone), or null. No rule runs meanwhile.
create function ops.alert_reader_problem() returns text
language sql stable set search_path = '' as $$
  with reader as (select * from pg_catalog.pg_roles where rolname = 'supagate_alert_reader')
  select coalesce(
    (select 'role supagate_alert_reader is missing' where not exists (select 1 from reader)),
    (select 'role supagate_alert_reader can log in or holds an attribute (superuser, bypassrls, createrole, '
            'createdb, replication) it must not' from reader
      where rolcanlogin or rolsuper or rolbypassrls or rolcreaterole or rolcreatedb or rolreplication),
    (select 'role supagate_alert_reader is a member of ' || string_agg(g.rolname, ', ')
       from pg_catalog.pg_auth_members m join reader r on r.oid = m.member join pg_catalog.pg_roles g on g.oid = m.roleid
     having count(*) > 0),
    (select 'ops.read_as_alert_reader is not the SECURITY DEFINER function supagate_alert_reader owns'
      where not exists (select 1 from pg_catalog.pg_proc p, reader r
                         where p.oid = pg_catalog.to_regprocedure('ops.read_as_alert_reader(text)')
                           and p.prosecdef and p.proowner = r.oid)),
    (select 'supagate_alert_reader may use schema ' || string_agg(n.nspname, ', ') || ' (secrets, jobs or requests)'
       from pg_catalog.pg_namespace n
      where n.nspname in ('vault', 'pgsodium', 'cron', 'net', 'extensions')
        and pg_catalog.has_schema_privilege('supagate_alert_reader', n.oid, 'USAGE')
     having count(*) > 0),
    (select 'supagate_alert_reader may execute ' || string_agg(distinct n.nspname || '.' || p.proname, ', ')
            || ', which reaches past the read-only transaction: revoke execute on it from public'
       from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
      where (p.proname like 'dblink%' or (n.nspname = 'ops' and p.proname not in ('now', 'read_as_alert_reader')))
        and pg_catalog.has_schema_privilege('supagate_alert_reader', n.oid, 'USAGE')
        and pg_catalog.has_function_privilege('supagate_alert_reader', p.oid, 'EXECUTE')
     having count(*) > 0))
$$;

-- One sql rule's value, behind the boundary; the caller armed the statement timeout.
create function ops.sql_rule_value(p_query text) returns numeric
language plpgsql set search_path = '' as $$
declare
  result numeric;
  problem text := ops.alert_reader_problem();
  budget interval := pg_catalog.current_setting('statement_timeout')::interval;
  held bigint;
begin
  if problem is not null then
    raise exception 'sql rules are not evaluated: %', problem
      using hint = 'supagate''s ops migration sets the role up; see DESIGN.md, trust model';
  end if;
  if budget <= interval '0' or budget > interval '60 seconds' then
    raise exception 'a sql rule runs only in a statement of its own with a statement timeout of at most 60 s (now %)',
      pg_catalog.current_setting('statement_timeout')
      using hint = 'the evaluation job and `supagate alerts evaluate` set one per rule';
  end if;
  select count(*) into held from pg_catalog.pg_locks where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid();
  begin
    result := ops.read_as_alert_reader(p_query);
    raise sqlstate 'SGRB0';  -- roll back what the rule did, its settings included
  exception
    when sqlstate 'SGRB0' then null;  -- `result` stays: PL/pgSQL variables are not rolled back
    when query_canceled then
      raise exception 'the query ran past its statement timeout of %', pg_catalog.current_setting('statement_timeout');
  end;
  -- a session-level advisory lock outlives the rollback: it could make maintenance jobs skip
  if (select count(*) from pg_catalog.pg_locks where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid()) > held then
    perform pg_catalog.pg_advisory_unlock_all();
    raise exception 'the query takes an advisory lock it keeps: an alert rule locks nothing';
  end if;
  return result;
end;
$$;
revoke execute on function ops.alert_reader_problem(), ops.sql_rule_value(text) from public;
-- ================================================================== end of the alert-rule boundary

-- ================================================================== job-runner boundary
-- A maintenance job's SQL comes from a stack file: ops.run_job executes it as
-- supagate_job_runner, which logs in nowhere, belongs to no role, owns nothing and holds only
-- what a migration grants it (`grant delete on public.jobs to supagate_job_runner`, `grant
-- usage on schema analytics ...`): ops.run_job is a SECURITY DEFINER function that role owns, where
-- PostgreSQL refuses SET ROLE back to the job's owner. So what the job reaches without naming
-- it (an overload, a trigger its DELETE fires, a function that updates every row) runs with the
-- runner's rights: DDL, other tables and the scheduler are refused by the database. A
-- SECURITY DEFINER function a migration grants it stays the reviewed way to do more. VACUUM
-- and REFRESH need the table's owner and run outside this boundary (pg_cron runs them as is).
do $$
begin
  if not exists (select 1 from pg_catalog.pg_roles where rolname = 'supagate_job_runner') then
    create role supagate_job_runner nologin noinherit;
  end if;
  if not pg_catalog.pg_has_role(current_user, 'supagate_job_runner', 'MEMBER') then
    execute format('grant supagate_job_runner to %I', current_user);  -- PostgreSQL 15: to hand it a function
  end if;
end
$$;

grant usage on schema ops to supagate_job_runner;
grant insert on ops.job_events to supagate_job_runner;  -- a skipped run says so
grant usage on sequence ops.job_events_id_seq to supagate_job_runner;
grant create on schema ops to supagate_job_runner;  -- ALTER ... OWNER TO needs it; not kept
alter function ops.run_job(text, text) owner to supagate_job_runner;
revoke create on schema ops from supagate_job_runner;
revoke execute on function ops.run_job(text, text) from public;
do $$ begin execute format('grant execute on function ops.run_job(text, text) to %I', current_user); end $$;

-- A `refresh:` job: REFRESH needs the view's owner, so it runs here, named by a regclass (no
-- SQL text crosses), skipping a run that finds the previous one still going, as run_job does.
create function ops.refresh_view(p_name text, p_view regclass) returns text
language plpgsql set search_path = '' as $$
begin
  if (select c.relkind from pg_catalog.pg_class c where c.oid = p_view) is distinct from 'm' then
    raise exception '% is not a materialized view', p_view;
  end if;
  if not pg_try_advisory_xact_lock(hashtext('supagate-cron:' || p_name)) then
    insert into ops.job_events (job, event, detail) values (p_name, 'skipped', 'the previous run was still going');
    return 'skipped';
  end if;
  execute format('refresh materialized view concurrently %s', p_view);
  return 'done';
end;
$$;
revoke execute on function ops.refresh_view(text, regclass) from public;
-- ================================================================== end of the job-runner boundary
