"""Lint the alert table (configs/alerts.yaml) and test the alert manager state machine."""

from __future__ import annotations

import numpy as np
import pytest

from vehicle_assist.audio_out import AudioArbiter, NullSink
from vehicle_assist.config import ConfigError, config_path
from vehicle_assist.messages import Hazard, HazardLevel, Tier
from vehicle_assist.perception import hazards
from vehicle_assist.safety import alerts
from vehicle_assist.safety.alert_manager import AlertManager
from vehicle_assist.safety.voice import AlertVoice

TABLE = alerts.load_table()
S = 1_000_000_000


def hz(kind: str, level: HazardLevel, tid: int = 1) -> Hazard:
    return Hazard(t_ns=0, kind=kind, level=level, label="car", track_id=tid)


# --- the table ---------------------------------------------------------------------------------


def test_table_triggers_name_real_hazard_kinds():
    kinds = {c.kind for c in hazards.load_table().classes.values()}
    known = kinds | set(alerts.SYSTEM_SIGNALS) | set(alerts.ROUTE_SIGNALS) | {hazards.FOLLOWING_TOO_CLOSE}
    for name, spec in TABLE.items():
        assert spec.trigger.kind in known, f"{name} triggers on unknown kind {spec.trigger.kind}"
    # every hazard kind that reaches warning has an audible alert on the alert tier
    for kind in kinds | set(alerts.SYSTEM_SIGNALS):
        assert any(s.trigger.kind == kind and s.audible and s.tier == "alert" for s in TABLE.values()), kind


def test_table_has_the_required_alerts_and_critical_ones_are_loudest():
    for name in ("forward-collision", "brake-now", "pedestrian-ahead", "cyclist-ahead", "camera-lost", "perception-lagging"):
        assert name in TABLE
    crit = [s for s in TABLE.values() if s.critical]
    assert crit and all(s.audible and s.tier == "alert" and s.trigger.level == "critical" for s in crit)
    assert min(s.priority for s in crit) > max(s.priority for s in TABLE.values() if not s.critical)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("priority: 90", "priority: 100"), "priority not shared"),
    (lambda t: t.replace('"Brake! Brake!"', '"Please consider braking now because the vehicle ahead is stopping"'), "words"),
    (lambda t: t.replace("    tier: alert\n    critical: true", "    tier: advisory\n    critical: true", 1), "alert tier"),
    (lambda t: t.replace("level: warning}", "level: severe}", 1), "level"),
    (lambda t: t.replace("cooldown_s: 6", "cooldown_s: 1", 1), "cooldown"),
    (lambda t: t.replace("brake-now:", "Brake_Now:"), "kebab"),
])
def test_table_lint_rejects_bad_rows(tmp_path, edit, message):
    bad = tmp_path / "alerts.yaml"
    bad.write_text(edit(config_path("alerts.yaml").read_text()))
    with pytest.raises(ConfigError, match=message):
        alerts.load_table(bad)


# --- the manager --------------------------------------------------------------------------------


def test_warning_starts_forward_collision_and_it_ends_after_min_duration():
    m = AlertManager(TABLE)
    ev = m.update([hz("forward-collision", HazardLevel.WARNING)], 0)
    assert [(e.name, e.state, e.audible) for e in ev] == [("forward-collision", "start", True)]
    assert m.update([], int(0.5 * S)) == []                 # held: min duration 1.5 s
    ev = m.update([], int(1.6 * S))
    assert [(e.name, e.state) for e in ev] == [("forward-collision", "end")]
    assert m.active is None


def test_caution_alone_is_silent_and_info_raises_nothing():
    m = AlertManager(TABLE)
    ev = m.update([hz("forward-collision", HazardLevel.CAUTION)], 0)
    assert [(e.name, e.audible) for e in ev] == [("vehicle-closing", False)]
    assert AlertManager(TABLE).update([hz("forward-collision", HazardLevel.INFO)], 0) == []


def test_escalation_to_brake_now_replaces_the_warning_at_once():
    m = AlertManager(TABLE)
    m.update([hz("forward-collision", HazardLevel.WARNING)], 0)
    ev = m.update([hz("forward-collision", HazardLevel.CRITICAL)], int(0.2 * S))
    assert [(e.name, e.state) for e in ev] == [("forward-collision", "end"), ("brake-now", "start")]


def test_flickering_hazard_never_repeats_within_cooldown():
    m = AlertManager(TABLE)
    starts = []
    rng = np.random.default_rng(0)
    for i in range(25 * 20):  # 20 s at 25 Hz, hazard present 60% of frames at random
        t = int(i * S / 25)
        hs = [hz("pedestrian-ahead", HazardLevel.WARNING)] if rng.random() < 0.6 else []
        starts += [(e.name, e.t_ns) for e in m.update(hs, t) if e.state == "start"]
    times = [t for n, t in starts if n == "pedestrian-ahead"]
    assert len(times) >= 2
    assert all(b - a >= TABLE["pedestrian-ahead"].cooldown_s * S for a, b in zip(times, times[1:]))


def test_persistent_hazard_is_one_alert_not_a_stream():
    m = AlertManager(TABLE)
    events = [e for i in range(250) for e in m.update([hz("camera-lost", HazardLevel.WARNING)], i * S // 25)]
    assert [(e.name, e.state) for e in events] == [("camera-lost", "start")]


def test_mute_silences_non_critical_but_never_critical():
    m = AlertManager(TABLE)
    ev = m.update([hz("pedestrian-ahead", HazardLevel.WARNING)], 0, mute_until_ns=60 * S)
    assert ev[0].name == "pedestrian-ahead" and ev[0].audible is False
    ev = m.update([hz("pedestrian-ahead", HazardLevel.CRITICAL)], S, mute_until_ns=60 * S)
    assert ev[-1].name == "pedestrian-critical" and ev[-1].audible is True
    m2 = AlertManager(TABLE)
    ev = m2.update([hz("pedestrian-ahead", HazardLevel.WARNING)], 61 * S, mute_until_ns=60 * S)
    assert ev[0].audible is True  # mute expired


def test_lower_priority_waits_for_the_active_alert_min_duration():
    m = AlertManager(TABLE)
    m.update([hz("forward-collision", HazardLevel.WARNING)], 0)
    assert m.update([hz("pedestrian-ahead", HazardLevel.WARNING, 2)], int(0.5 * S)) == []
    ev = m.update([hz("pedestrian-ahead", HazardLevel.WARNING, 2)], int(1.6 * S))
    assert [(e.name, e.state) for e in ev] == [("forward-collision", "end"), ("pedestrian-ahead", "start")]


class FakeRenderer:
    """Isolates AlertVoice from espeak (the real renderer is exercised in test_audio_out)."""

    def __init__(self) -> None:
        self.calls = []

    def render(self, text):
        from vehicle_assist.speech.tts import Rendered

        self.calls.append(text)
        return Rendered(text, np.full(2205, 0.1, np.float32), 22050, 1.0)


def test_alert_voice_prerenders_once_and_speaks_on_the_alert_tier():
    r = FakeRenderer()
    arb = AudioArbiter(NullSink(realtime=False)).start()
    started = []
    arb.add_listener(lambda k, req, t: started.append((k, req.source)))
    voice = AlertVoice(TABLE, r, arb)
    assert sorted(r.calls) == sorted(s.text for s in TABLE.values() if s.audible)
    m = AlertManager(TABLE)
    reqs = voice.handle(m.update([hz("forward-collision", HazardLevel.WARNING)], 0))
    assert arb.wait_idle(2.0)
    arb.close()
    assert len(r.calls) == sum(s.audible for s in TABLE.values())  # nothing rendered at alert time
    assert reqs[0].tier == Tier.ALERT and reqs[0].source == "alert:forward-collision"
    assert ("start", "alert:forward-collision") in started


def test_deescalation_does_not_start_the_weaker_alert_of_the_same_kind():
    m = AlertManager(TABLE)
    m.update([hz("forward-collision", HazardLevel.CRITICAL)], 0)
    ev = m.update([hz("forward-collision", HazardLevel.WARNING)], int(1.2 * S))  # brake-now held 1.0 s, then ends
    assert [(e.name, e.state) for e in ev] == [("brake-now", "end")]
    assert m.update([hz("forward-collision", HazardLevel.WARNING)], int(3 * S)) == []
    ev = m.update([hz("forward-collision", HazardLevel.WARNING)], int(6.1 * S))  # forward-collision's cooldown over
    assert [(e.name, e.state) for e in ev] == [("forward-collision", "start")]
