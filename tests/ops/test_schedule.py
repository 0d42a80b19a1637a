"""Schedules as pg_cron reads them: what we accept, Debian's pg_cron 1.4.2 accepts too
(differential, on the real extension); what it rejects we reject; syntax newer than the
target's version is refused with the version it needs; next runs and the local preview."""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg
import pytest

from supagate.ops.schedule import next_runs, parse, preview

SCHEDULES = ["* * * * *", "*/5 * * * *", "3-58/5 * * * *", "0 3 * * sun", "0 3 * * 7", "0 3 * jan mon-fri",
             "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight", "30 seconds",
             "0 0 $ * *", "60 * * * *", "* 24 * * *", "0 0 0 * *", "* * * * * *", "*/0 * * * *", "1,2,3 * * * *",
             "5-1 * * * *", "0 0 31 2 *", "0 0 * * 8", "1-5/2 * * * *", "* * * 13 *", "59 23 31 12 6",
             "a * * * *", "", "1 seconds", "60 seconds", " * * * * * ", "0 0 L * *", "0 0 * * 1#2", "* * ? * *",
             "*/61 * * * *", "0-59/15 * * * *", "MON * * * *", "0 0 1-31 * *", "0 0 * * 0-7", "@reboot"]


def _accepts(text: str) -> bool:
    try:
        parse(text, (1, 4, 2))
        return True
    except ValueError:
        return False


def test_what_we_accept_pg_cron_accepts(ops_url):
    """Stricter never looser: every schedule we accept, pg_cron 1.4.2 accepts; every one it
    refuses, we refuse. (It accepts some we refuse on purpose: a sixth field, `5-1`, `*/61`,
    `1#2` — all silently meaning something else.)"""
    theirs = {}
    with psycopg.connect(ops_url, autocommit=True) as conn:
        for text in SCHEDULES:
            try:
                with conn.transaction():
                    conn.execute("select cron.schedule('schedule-probe', %s, 'select 1')", (text,))
                theirs[text] = True
            except psycopg.Error:
                theirs[text] = False
        conn.execute("select cron.unschedule('schedule-probe')")
    ours = {text: _accepts(text) for text in SCHEDULES}
    looser = [t for t in SCHEDULES if ours[t] and not theirs[t]]
    assert looser == []
    stricter = sorted(t for t in SCHEDULES if theirs[t] and not ours[t])
    assert stricter == sorted(["* * * * * *", "5-1 * * * *", "*/61 * * * *", "0 0 * * 1#2", "@reboot"])
    assert sum(ours.values()) >= 20


def test_newer_syntax_needs_the_version_that_has_it():
    with pytest.raises(ValueError, match="need pg_cron 1.5 or later"):
        parse("30 seconds", (1, 4, 2))
    with pytest.raises(ValueError, match=r"'\$' \(last day of the month\) needs pg_cron 1.6"):
        parse("0 0 $ * *", (1, 5, 1))
    assert parse("30 seconds", (1, 6)).seconds == 30
    with pytest.raises(ValueError, match="every 1 to 59 seconds"):
        parse("60 seconds", (1, 6))


def test_next_runs_follow_crons_rules():
    after = datetime(2026, 1, 30, 22, 0, tzinfo=timezone.utc)  # a Friday
    assert next_runs(parse("30 3 * * 0"), after, 2) == [datetime(2026, 2, 1, 3, 30, tzinfo=timezone.utc),
                                                          datetime(2026, 2, 8, 3, 30, tzinfo=timezone.utc)]
    # Both day fields restricted: either one matching is enough (the 1st, or any Monday).
    runs = next_runs(parse("0 0 1 * mon"), after, 3)
    assert [r.day for r in runs] == [1, 2, 9]
    assert next_runs(parse("0 0 $ * *"), after, 2)[0].day == 31
    assert next_runs(parse("0 0 $ * *"), datetime(2026, 2, 1, tzinfo=timezone.utc), 1)[0].day == 28
    assert next_runs(parse("0 0 31 2 *"), after, 1) == []  # never comes


def test_preview_says_utc_and_the_local_time_across_dst():
    shown = preview("30 3 * * 0", "Europe/Berlin", after=datetime(2026, 3, 20, tzinfo=timezone.utc))
    # 03:30 UTC is 04:30 in Berlin in winter, 05:30 after the switch on 29 March.
    assert shown.startswith("Sun 2026-03-22 03:30 UTC (04:30 Europe/Berlin), Sun 2026-03-29 03:30 UTC (05:30 Europe/Berlin)")
