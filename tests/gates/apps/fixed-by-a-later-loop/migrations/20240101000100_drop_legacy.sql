drop table public.legacy_steps;
