-- The timeline filters by event type. engagement_events is large and written all day,
-- so the index is built without blocking writes: CONCURRENTLY, alone in its own file
-- (it cannot run inside a transaction).
create index concurrently if not exists engagement_events_user_type_idx
  on public.engagement_events (user_id, event_type, occurred_at desc);
