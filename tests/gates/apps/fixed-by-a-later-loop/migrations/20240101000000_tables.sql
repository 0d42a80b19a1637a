create table public.measurements (id bigint primary key generated always as identity,
  user_id uuid not null references auth.users, kind text not null, value numeric not null,
  taken_at timestamptz not null default now());
alter table public.measurements enable row level security;
create policy "own measurements" on public.measurements for all to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create table public.legacy_steps (id bigint primary key, user_id uuid references auth.users, steps int);
alter table public.legacy_steps enable row level security;
create policy "own steps" on public.legacy_steps for select to authenticated using ((select auth.uid()) = user_id);
