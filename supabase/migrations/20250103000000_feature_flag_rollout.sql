-- Gradual rollout: a flag is on for a stable percentage of users, optionally limited to
-- an audience. The bucket of a user is derived from the flag key and the user id, so it
-- does not change between requests.
alter table public.feature_flags
  add column rollout_percentage smallint not null default 100
    check (rollout_percentage between 0 and 100),
  add column audience text not null default 'everyone'
    check (audience in ('everyone', 'coaches', 'members'));

create function public.feature_enabled(flag_key text)
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce((
    select f.enabled
       and (f.audience = 'everyone'
            or (f.audience = 'coaches') = ((auth.jwt() -> 'app_metadata' ->> 'role') is not distinct from 'coach'))
       and (abs(hashtext(f.key || ':' || coalesce(auth.uid()::text, ''))) % 100) < f.rollout_percentage
    from public.feature_flags f
    where f.key = flag_key
  ), false)
$$;
revoke execute on function public.feature_enabled(text) from public, anon;
grant execute on function public.feature_enabled(text) to authenticated, service_role;
