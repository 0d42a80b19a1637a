create table public.profiles (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null unique references auth.users (id) on delete cascade,
  display_name text,
  phone text
);
alter table public.profiles enable row level security;
create policy "profiles are read by their owner" on public.profiles for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "profiles can be updated" on public.profiles for update to authenticated using (true);

create table public.clinics (id bigint primary key generated always as identity, name text not null, address text);
alter table public.clinics enable row level security;
create policy "clinics are listed" on public.clinics for select to authenticated using (true);
create policy "clinics are edited" on public.clinics for update to authenticated using (true);
