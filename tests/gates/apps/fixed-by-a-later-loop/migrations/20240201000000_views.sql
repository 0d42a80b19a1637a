create view public.daily_totals as
  select user_id, date_trunc('day', taken_at) as day, kind, sum(value) as total
  from public.measurements group by 1, 2, 3;
create view public.latest_readings as
  select distinct on (user_id, kind) user_id, kind, value, taken_at
  from public.measurements order by user_id, kind, taken_at desc;
create view public.weekly_totals as
  select user_id, date_trunc('week', taken_at) as week, kind, sum(value) as total
  from public.measurements group by 1, 2, 3;
