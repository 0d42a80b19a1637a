drop index concurrently if exists public.engagement_events_user_type_idx;
