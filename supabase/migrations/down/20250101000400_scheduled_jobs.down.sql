select cron.unschedule('refresh-latest-unified-metrics');
select cron.unschedule('cleanup-rate-limits');
