drop function if exists public.feature_enabled(text);
alter table public.feature_flags drop column if exists audience, drop column if exists rollout_percentage;
