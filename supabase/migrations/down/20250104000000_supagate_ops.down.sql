-- Removes supagate's operations schema: alert rules, their state and undelivered notifications.
drop schema if exists ops cascade;
