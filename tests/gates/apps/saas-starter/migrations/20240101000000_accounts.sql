create schema if not exists basejump;
grant usage on schema basejump to authenticated, service_role;

create type basejump.account_role as enum ('owner', 'member');

create table public.accounts (
  id uuid primary key default extensions.uuid_generate_v4(),
  primary_owner_user_id uuid not null default auth.uid() references auth.users,
  name text,
  slug text unique,
  personal_account boolean not null default false,
  created_at timestamptz default now(),
  created_by uuid references auth.users,
  public_metadata jsonb default '{}'::jsonb,
  private_metadata jsonb default '{}'::jsonb
);
create table public.account_user (
  user_id uuid references auth.users on delete cascade not null,
  account_id uuid references public.accounts on delete cascade not null,
  account_role basejump.account_role not null,
  constraint account_user_pkey primary key (user_id, account_id)
);
alter table public.accounts enable row level security;
alter table public.account_user enable row level security;

create or replace function basejump.has_role_on_account(account_id uuid, account_role basejump.account_role default null)
  returns boolean language sql security definer set search_path = ''
as $$
  select exists (
    select 1 from public.account_user wu
    where wu.user_id = (select auth.uid()) and wu.account_id = has_role_on_account.account_id
      and (wu.account_role = has_role_on_account.account_role or has_role_on_account.account_role is null)
  );
$$;
grant execute on function basejump.has_role_on_account(uuid, basejump.account_role) to authenticated;

create policy "users can view their own account_users" on public.account_user for select to authenticated
  using (user_id = (select auth.uid()));
create policy "users can view their teammates" on public.account_user for select to authenticated
  using (basejump.has_role_on_account(account_id) = true);
create policy "Account users can be deleted by owners except primary account owner" on public.account_user
  for delete to authenticated
  using ((basejump.has_role_on_account(account_id, 'owner') = true)
         and user_id != (select primary_owner_user_id from public.accounts where account_id = accounts.id));
create policy "Accounts are viewable by members" on public.accounts for select to authenticated
  using (basejump.has_role_on_account(id) = true);
create policy "Accounts are viewable by primary owner" on public.accounts for select to authenticated
  using (primary_owner_user_id = (select auth.uid()));
create policy "Accounts can be edited by owners" on public.accounts for update to authenticated
  using (basejump.has_role_on_account(id, 'owner') = true);
