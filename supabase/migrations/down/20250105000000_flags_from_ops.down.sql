-- Back to the table-based rollout of 20250103000000.
drop function if exists public.my_feature_flags();
create or replace function public.feature_enabled(flag_key text)
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
