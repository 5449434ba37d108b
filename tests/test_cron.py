"""Missed-run policies after long outages (more missed instants than MAX_INSTANTS), and time zones
across daylight saving changes with a controlled clock. Pure: no Redis."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from upnext import Worker
from upnext.cron import MAX_INSTANTS, MISSED_AFTER_S, MissedRunPolicy, Schedule, plan
from upnext.errors import ConfigError

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


# -- time zones and daylight saving time (a controlled clock: the loop wakes at each cursor) --------
BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*when: int, fold: int = 0) -> float:
    return datetime(*when, tzinfo=BERLIN, fold=fold).timestamp()  # type: ignore[misc]


def fired(schedule: Schedule, start: float, end: float, policy: MissedRunPolicy = MissedRunPolicy.LATEST_ONLY,
          late_s: float = 0.5) -> list[float]:
    """Every instant a worker runs between ``start`` and ``end`` when its cron loop wakes ``late_s``
    after each cursor, as cron_tick does (the cursor starts as cron_tick seeds it)."""
    cursor, runs = schedule.next_after(start), []
    while cursor <= end:
        ran, cursor = plan(schedule, cursor, cursor + late_s, policy, None)
        runs += ran
    return runs


def local(instants: list[float]) -> list[str]:
    return [datetime.fromtimestamp(i, BERLIN).strftime("%m-%d %H:%M%z") for i in instants]


def test_a_daily_0230_in_berlin_runs_once_a_day_across_spring_forward_at_0300_on_the_day_0230_does_not_exist():
    runs = fired(Schedule("0 30 2 * * *", tz="Europe/Berlin"), berlin(2026, 3, 27), berlin(2026, 3, 31))
    assert local(runs) == ["03-27 02:30+0100", "03-28 02:30+0100", "03-29 03:00+0200", "03-30 02:30+0200"]


def test_a_daily_0230_in_berlin_runs_once_on_the_fall_back_day_when_0230_happens_twice():
    runs = fired(Schedule("30 2 * * *", tz="Europe/Berlin"), berlin(2026, 10, 24), berlin(2026, 10, 27))
    assert local(runs) == ["10-24 02:30+0200", "10-25 02:30+0200", "10-26 02:30+0100"]


def test_an_hourly_cron_in_berlin_keeps_its_pace_through_both_changes_none_doubled_none_lost():
    hourly = Schedule("0 30 * * * *", tz="Europe/Berlin")
    spring = fired(hourly, berlin(2026, 3, 29), berlin(2026, 3, 30))
    autumn = fired(hourly, berlin(2026, 10, 25), berlin(2026, 10, 26))
    assert len(spring) == 23 and len(autumn) == 25  # the days are 23 and 25 hours long
    for runs in (spring, autumn):
        assert [b - a for a, b in zip(runs, runs[1:])] == [3600.0] * (len(runs) - 1)


def test_a_catch_up_across_the_fall_back_hour_runs_its_0230_once():
    daily = Schedule("0 30 2 * * *", tz="Europe/Berlin")
    cursor = daily.next_after(berlin(2026, 10, 25, 1))
    runs, after = plan(daily, cursor, berlin(2026, 10, 25, 5), MissedRunPolicy.CATCH_UP, None)
    assert local(runs) == ["10-25 02:30+0200"] and local([after]) == ["10-26 02:30+0100"]


def test_a_zone_is_part_of_the_stored_schedule_and_utc_is_unchanged():
    assert Schedule("* * * * *").spec == "* * * * *"
    assert Schedule("* * * * *", tz="Europe/Berlin").spec == "* * * * * Europe/Berlin"
    assert Schedule("0 0 * * * *", tz="UTC").next_after(0.0) == Schedule("0 0 * * * *").next_after(0.0) == 3600.0


def test_an_unknown_zone_is_a_config_error_naming_the_cron_and_the_zone():
    worker = Worker("tz-check")
    with pytest.raises(ConfigError, match=r"cron 'nightly'.*'Mars/Olympus_Mons'"):
        @worker.cron("0 2 * * *", tz="Mars/Olympus_Mons")
        def nightly() -> None: ...
    assert "nightly" not in worker.tasks


def test_cron_arguments_are_checked_at_decoration_naming_the_cron():
    worker = Worker("args-check")
    with pytest.raises(TypeError, match=r"cron 'sync'.*missing a required argument: 'region'"):
        @worker.cron("0 2 * * *")
        def sync(region: str) -> None: ...
    with pytest.raises(TypeError, match=r"cron 'sync'.*'when' is not JSON-serializable"):
        @worker.cron("0 2 * * *", kwargs={"region": "eu", "when": object()})
        def sync(region: str, when: object = None) -> None: ...  # noqa: F811
    with pytest.raises(ConfigError, match=r"cron 'sync': overlap must be True or False"):
        @worker.cron("0 2 * * *", args=("eu",), overlap="no")  # type: ignore[arg-type]
        def sync(region: str) -> None: ...  # noqa: F811

    @worker.cron("0 2 * * *", args=("eu",), kwargs={"full": True}, overlap=False, tz="Europe/Berlin")
    def sync(region: str, full: bool = False) -> None: ...  # noqa: F811
    cron = worker.crons["sync"]
    assert (cron.function, cron.args, cron.kwargs, cron.overlap) == ("sync", '["eu"]', '{"full":true}', False)
    assert cron.schedule.spec == "0 2 * * * Europe/Berlin" and not worker.crons.keys() - {"sync"}


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize("at", ["0 2", "15 2", "30 2", "45 1", "59 2", "0 3"])
def test_a_daily_cron_runs_exactly_once_on_every_local_day_of_a_year_in_a_zone_with_dst(zone: str, at: str):
    """Every day of 2026, including both changes (Lord Howe shifts by 30 minutes), gets one run,
    never two, and never before its wall-clock time."""
    schedule = Schedule(f"{at} * * *", tz=zone)
    tz = ZoneInfo(zone)
    start, end = datetime(2026, 1, 1, tzinfo=tz).timestamp(), datetime(2027, 1, 1, tzinfo=tz).timestamp()
    runs = [datetime.fromtimestamp(i, tz) for i in fired(schedule, start, end - 1)]
    assert [r.date() for r in runs] == sorted({r.date() for r in runs}) and len(runs) == 365
    minute, hour = (int(v) for v in at.split())
    assert all((r.hour, r.minute) >= (hour, minute) for r in runs)
