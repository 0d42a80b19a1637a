-- Removes supagate's operations schema: alert rules, their state and undelivered notifications,
-- flags, rate-limit counters, and the one function it put in public.
drop function if exists public.supagate_hit_rate_limit(text, text, text);
drop schema if exists ops cascade;
