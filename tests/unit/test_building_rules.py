"""Pure rules of building sensors: reading a message, judging values with a dead band,
checking linkage actions, matching rules to alarms."""

from __future__ import annotations

import datetime as dt

import pytest

from biblioverse.building.rules import (
    AlarmFacts,
    Limits,
    Metric,
    RuleFacts,
    Verdict,
    check_action,
    judge,
    parse_readings,
    rule_matches,
)
from biblioverse.devices.rules import ErrorKind, PayloadError

NOW = dt.datetime(2026, 11, 21, 2, 0, tzinfo=dt.UTC)


def test_a_message_is_read_with_its_channels_and_the_last_value_wins() -> None:
    r = parse_readings(
        b'{"seq": 3, "ts": "2026-11-21T09:59:00+08:00", "readings": ['
        b'{"metric": "humidity", "value": 50}, {"metric": "humidity", "value": 51.5},'
        b'{"metric": "seat", "channel": "R2-14", "value": 1}]}',
        device_id=7,
        received=NOW,
    )
    assert (r.seq, r.ts, r.skewed) == (3, NOW - dt.timedelta(minutes=1), False)
    assert [(x.metric, x.value, x.channel) for x in r.readings] == [
        (Metric.HUMIDITY, 51.5, ""),
        (Metric.SEAT, 1.0, "R2-14"),
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"[1]", "payload"),
        (b'{"seq": 1, "ts": "x", "readings": []}', "ts"),
        (b'{"seq": 1, "ts": 0, "readings": {}}', "readings"),
        (b'{"seq": 1, "ts": 0, "readings": [3]}', "readings[0]"),
        (
            b'{"seq": 1, "ts": 0, "readings": [{"metric": "co2", "value": true}]}',
            "readings[0].value",
        ),
        (b'{"seq": 1, "ts": 0, "readings": [{"metric": "co2", "value": -5}]}', "readings[0].value"),
        (
            b'{"seq": 1, "ts": 0, "readings": [{"metric": "noise", "value": 1, "channel": "a b"}]}',
            "readings[0].channel",
        ),
    ],
)
def test_a_bad_message_names_its_field(payload: bytes, field: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_readings(payload, device_id=1, received=NOW)
    assert caught.value.field == field


def test_a_sensor_speaks_only_for_itself_and_a_fast_clock_is_replaced() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_readings(
            b'{"device": 2, "seq": 1, "ts": 0, "readings": []}', device_id=1, received=NOW
        )
    assert caught.value.kind is ErrorKind.WRONG_DEVICE
    ahead = (NOW + dt.timedelta(hours=1)).isoformat()
    r = parse_readings(
        f'{{"seq": 1, "ts": "{ahead}", "readings": [{{"metric": "co2", "value": 500}}]}}',
        device_id=1,
        received=NOW,
    )
    assert (r.ts, r.skewed) == (NOW, True)


def test_an_alarm_resolves_only_once_back_inside_by_the_dead_band() -> None:
    limits = Limits(45.0, 55.0)
    h = Metric.HUMIDITY  # dead band 1 %
    assert judge(h, 55.0, limits, open_alarm=False) is Verdict.QUIET
    assert judge(h, 55.1, limits, open_alarm=False) is Verdict.RAISE
    assert judge(h, 44.9, limits, open_alarm=False) is Verdict.RAISE
    assert judge(h, 54.5, limits, open_alarm=True) is Verdict.KEEP
    assert judge(h, 54.0, limits, open_alarm=True) is Verdict.RESOLVE
    assert judge(h, 45.5, limits, open_alarm=True) is Verdict.KEEP
    assert judge(h, 60.0, None, open_alarm=True) is Verdict.RESOLVE  # the range was removed
    only_high = Limits(None, 1000.0)
    assert judge(Metric.CO2, 0.0, only_high, open_alarm=False) is Verdict.QUIET
    assert limits.excess(58.0) == pytest.approx(3.0) and limits.excess(50) == 0


def test_linkage_actions_are_checked_field_by_field() -> None:
    assert check_action({"type": "notify", "extra": 1}, 0) == {"type": "notify"}
    assert check_action({"type": "webhook", "url": "https://ops.example/hook"}, 0)["secret"] == ""
    for action, message in [
        ({"type": "mqtt", "device_id": True, "command": "on"}, "actions[2].device_id"),
        ({"type": "mqtt", "device_id": 4, "command": "Turn On!"}, "actions[2].command"),
        ({"type": "mqtt", "device_id": 4, "command": "on", "args": []}, "actions[2].args"),
        ({"type": "webhook", "url": "javascript:alert(1)"}, "actions[2].url"),
        ({"type": "sms"}, "actions[2].type"),
    ]:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            check_action(action, 2)


def test_a_rule_of_a_library_acts_on_its_branches_alarms() -> None:
    alarm = AlarmFacts("threshold", "humidity", 9, "/1/2/5/")
    rule = RuleFacts(None, "humidity", None, "/1/2/", "raised", True)
    assert rule_matches(rule, alarm, "raised")
    assert not rule_matches(rule, alarm, "resolved")
    assert not rule_matches(RuleFacts(None, None, None, "/1/3/", "raised", True), alarm, "raised")
    assert not rule_matches(RuleFacts("gate", None, None, "/1/", "raised", True), alarm, "raised")
    assert not rule_matches(RuleFacts(None, None, 8, "/1/", "raised", True), alarm, "raised")
    assert not rule_matches(RuleFacts(None, None, None, "/1/", "raised", False), alarm, "raised")
    # '/1/2/' is not below '/1/2' + '0/': paths end with a slash
    assert not rule_matches(
        RuleFacts(None, None, None, "/1/2/", "raised", True),
        AlarmFacts("gate", None, None, "/1/20/"),
        "raised",
    )
