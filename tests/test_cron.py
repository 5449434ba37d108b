"""Missed-run policies after long outages (more missed instants than MAX_INSTANTS). Pure: no Redis."""

from __future__ import annotations

from upnext.cron import MAX_INSTANTS, MISSED_AFTER_S, MissedRunPolicy, Schedule, plan

EVERY_SECOND = Schedule("* * * * * *")
CURSOR = 1000.0
NOW = CURSOR + 5000.0  # five times MAX_INSTANTS instants missed
ON_TIME = [NOW - i for i in range(int(MISSED_AFTER_S) - 1, -1, -1)]


def test_latest_only_after_more_than_max_instants_runs_the_latest_missed_and_the_on_time_ones():
    runs, cursor = plan(EVERY_SECOND, CURSOR, NOW, MissedRunPolicy.LATEST_ONLY, None)
    assert runs == ON_TIME and cursor == NOW + 1


def test_latest_only_with_no_on_time_instant_runs_the_latest_missed_not_the_thousandth():
    hourly_ish = Schedule("0 * * * * *")  # every minute, on the minute
    now = 60.0 * 5000 + 30  # 30 s after the latest instant: missed, not on time
    runs, cursor = plan(hourly_ish, 60.0, now, MissedRunPolicy.LATEST_ONLY, None)
    assert runs == [60.0 * 5000] and cursor == 60.0 * 5001


def test_skip_after_more_than_max_instants_still_runs_the_on_time_instants():
    assert plan(EVERY_SECOND, CURSOR, NOW, MissedRunPolicy.SKIP, None) == (ON_TIME, NOW + 1)


def test_catch_up_window_after_more_than_max_instants_runs_the_window():
    runs, cursor = plan(EVERY_SECOND, CURSOR, NOW, MissedRunPolicy.CATCH_UP, 60)
    assert runs == [NOW - i for i in range(60, -1, -1)] and cursor == NOW + 1


def test_catch_up_without_a_window_runs_the_most_recent_max_instants():
    runs, cursor = plan(EVERY_SECOND, CURSOR, NOW, MissedRunPolicy.CATCH_UP, None)
    assert runs == [NOW - i for i in range(MAX_INSTANTS - 1, -1, -1)] and cursor == NOW + 1


def test_short_outages_are_unchanged():
    runs, cursor = plan(EVERY_SECOND, 990.0, 1000.0, MissedRunPolicy.CATCH_UP, None)
    assert runs == [float(i) for i in range(990, 1001)] and cursor == 1001.0
    assert plan(EVERY_SECOND, 1000.0, 1000.0, MissedRunPolicy.SKIP, None) == ([1000.0], 1001.0)


def test_catch_up_with_a_window_shorter_than_the_missed_threshold_still_runs_the_on_time_instants():
    runs, _ = plan(EVERY_SECOND, CURSOR, NOW, MissedRunPolicy.CATCH_UP, 2)
    assert runs == ON_TIME
