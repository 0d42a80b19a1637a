-- Momentum meter: the tables the app reads and writes through the Data API.
-- Every exposed table has RLS on, and every policy is scoped to the signed-in user
-- (auth.uid()) or to a coach by the `role` claim in app_metadata, which only the
-- service role can set. user_metadata is never trusted: users can edit it.

create schema if not exists private;
create schema if not exists analytics;
create schema if not exists monitoring;
revoke all on schema private, analytics, monitoring from public, anon, authenticated;

create table public.daily_engagement_scores (
  id bigint generated always as identity primary key,
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  date date not null,
  score numeric(5, 2) not null check (score between 0 and 100),
  momentum_state text not null check (momentum_state in ('rising', 'steady', 'needs_care')),
  created_at timestamptz not null default now(),
  unique (user_id, date)
);

create table public.momentum_notifications (
  id bigint generated always as identity primary key,
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  kind text not null check (kind in ('momentum_drop', 'celebration', 'coach_message', 'reminder')),
  title text not null,
  body text not null default '',
  sent_at timestamptz not null default now(),
  read_at timestamptz
);

create table public.coach_interventions (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  coach_id uuid not null references auth.users (id),
  kind text not null check (kind in ('check_in', 'call', 'message', 'escalation')),
  notes text,
  scheduled_for timestamptz not null default now(),
  completed_at timestamptz,
  created_at timestamptz not null default now()
);

create table public.engagement_events (
  id bigint generated always as identity primary key,
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  event_type text not null,
  payload jsonb not null default '{}'::jsonb,
  occurred_at timestamptz not null default now()
);

-- PHQ-9 (0-27) and GAD-7 (0-21); a crisis flag the app escalates on.
create table public.assessments (
  id bigint generated always as identity primary key,
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  phq9_score smallint not null check (phq9_score between 0 and 27),
  gad7_score smallint not null check (gad7_score between 0 and 21),
  crisis boolean generated always as (phq9_score >= 20 or gad7_score >= 15) stored,
  taken_at timestamptz not null default now()
);

create table public.metric_confidence_cache (
  user_id uuid not null references auth.users (id) on delete cascade,
  metric text not null,
  confidence numeric(4, 3) not null check (confidence between 0 and 1),
  sample_size integer not null default 0 check (sample_size >= 0),
  computed_at timestamptz not null default now(),
  primary key (user_id, metric)
);

create table public.feature_flags (
  id bigint generated always as identity primary key,
  key text not null unique check (key ~ '^[a-z][a-z0-9_]*$'),
  description text not null default '',
  enabled boolean not null default false,
  updated_at timestamptz not null default now()
);

alter table public.daily_engagement_scores enable row level security;
alter table public.momentum_notifications enable row level security;
alter table public.coach_interventions enable row level security;
alter table public.engagement_events enable row level security;
alter table public.assessments enable row level security;
alter table public.metric_confidence_cache enable row level security;
alter table public.feature_flags enable row level security;

-- Nothing here is for signed-out visitors.
revoke all on public.daily_engagement_scores, public.momentum_notifications,
  public.coach_interventions, public.engagement_events, public.assessments,
  public.metric_confidence_cache, public.feature_flags from anon;

-- Owners read their own rows; coaches read the rows of the people they coach.
create policy "owner reads own scores" on public.daily_engagement_scores
  for select to authenticated using (user_id = (select auth.uid()));
create policy "coach reads scores of coached users" on public.daily_engagement_scores
  for select to authenticated using (
    (select auth.jwt() -> 'app_metadata' ->> 'role') = 'coach'
    and exists (select 1 from public.coach_interventions ci
                where ci.user_id = daily_engagement_scores.user_id
                  and ci.coach_id = (select auth.uid())));

create policy "owner reads own notifications" on public.momentum_notifications
  for select to authenticated using (user_id = (select auth.uid()));
create policy "owner marks own notifications read" on public.momentum_notifications
  for update to authenticated
  using (user_id = (select auth.uid())) with check (user_id = (select auth.uid()));

create policy "owner reads own interventions" on public.coach_interventions
  for select to authenticated using (user_id = (select auth.uid()));
create policy "coach reads assigned interventions" on public.coach_interventions
  for select to authenticated using (
    (select auth.jwt() -> 'app_metadata' ->> 'role') = 'coach' and coach_id = (select auth.uid()));
create policy "coach creates assigned interventions" on public.coach_interventions
  for insert to authenticated with check (
    (select auth.jwt() -> 'app_metadata' ->> 'role') = 'coach' and coach_id = (select auth.uid()));
create policy "coach updates assigned interventions" on public.coach_interventions
  for update to authenticated
  using ((select auth.jwt() -> 'app_metadata' ->> 'role') = 'coach' and coach_id = (select auth.uid()))
  with check ((select auth.jwt() -> 'app_metadata' ->> 'role') = 'coach' and coach_id = (select auth.uid()));

create policy "owner reads own events" on public.engagement_events
  for select to authenticated using (user_id = (select auth.uid()));
create policy "owner records own events" on public.engagement_events
  for insert to authenticated with check (user_id = (select auth.uid()));

create policy "owner reads own assessments" on public.assessments
  for select to authenticated using (user_id = (select auth.uid()));
create policy "owner submits own assessments" on public.assessments
  for insert to authenticated with check (user_id = (select auth.uid()));
create policy "coach reads assessments of coached users" on public.assessments
  for select to authenticated using (
    (select auth.jwt() -> 'app_metadata' ->> 'role') = 'coach'
    and exists (select 1 from public.coach_interventions ci
                where ci.user_id = assessments.user_id
                  and ci.coach_id = (select auth.uid())));

create policy "owner reads own confidence" on public.metric_confidence_cache
  for select to authenticated using (user_id = (select auth.uid()));

-- Flags are not personal: any signed-in user may read them; only the service role writes.
create policy "signed-in users read flags" on public.feature_flags
  for select to authenticated using (true);
revoke insert, update, delete, truncate on public.feature_flags from authenticated;
revoke insert, update, delete, truncate on public.daily_engagement_scores,
  public.metric_confidence_cache from authenticated;

-- The indexes the queries need (owner lookups newest first, open interventions).
create index daily_engagement_scores_user_date_idx
  on public.daily_engagement_scores (user_id, date desc);
create index momentum_notifications_user_unread_idx
  on public.momentum_notifications (user_id, sent_at desc) where read_at is null;
create index coach_interventions_open_idx
  on public.coach_interventions (coach_id, scheduled_for) where completed_at is null;
create index coach_interventions_user_idx on public.coach_interventions (user_id);
create index engagement_events_user_time_idx
  on public.engagement_events (user_id, occurred_at desc);
create index assessments_user_time_idx on public.assessments (user_id, taken_at desc);
create index assessments_crisis_idx on public.assessments (taken_at desc) where crisis;
