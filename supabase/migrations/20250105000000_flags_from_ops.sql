-- Feature flags now live in supagate's ops.flags (written by the stack's FeatureFlag
-- resources): staged rollouts, safety flags that stay on, and bucketing that Deno and
-- Python reproduce (SHA-256, not hashtext, whose abs() overflowed on one value in 2^32 and
-- which no other runtime can compute). The app keeps its two entry points.
create or replace function public.feature_enabled(flag_key text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select (ops.flag_evaluate(flag_key, auth.uid()::text,
                            case when (auth.jwt() -> 'app_metadata' ->> 'role') is not distinct from 'coach'
                                 then 'coaches' else 'members' end)).enabled
$$;
revoke execute on function public.feature_enabled(text) from public, anon;
grant execute on function public.feature_enabled(text) to authenticated, service_role;

-- Every flag for the caller, with OpenFeature's reason: what the flags edge function serves.
create function public.my_feature_flags()
returns table (key text, enabled boolean, reason text, kind text)
language sql
stable
security definer
set search_path = ''
as $$
  select f.key, f.enabled, f.reason, f.kind
    from ops.flags_for(auth.uid()::text,
                       case when (auth.jwt() -> 'app_metadata' ->> 'role') is not distinct from 'coach'
                            then 'coaches' else 'members' end) f
$$;
revoke execute on function public.my_feature_flags() from public, anon;
grant execute on function public.my_feature_flags() to authenticated, service_role;
