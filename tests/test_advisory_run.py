"""AdvisoryRun: stage events, routes, timeouts, validation fallback and pre-emption.

The retriever and, where the point is the run's own logic, the SLM are replaced by small stand-ins
that return fixed data (isolation); the real SLM and retriever are exercised in the slow tests."""

from __future__ import annotations

import asyncio
import threading
import time

from vehicle_assist.advisory.run import AdvisoryRun
from vehicle_assist.advisory.slm import Generated
from vehicle_assist.config import AdvisorySettings
from vehicle_assist.messages import Hazard, HazardLevel, Passage

P126 = Passage("126", "General rules", "Stopping distances",
               "You should\n- allow at least a two-second gap between you and the vehicle in front on high-speed roads "
               "and in tunnels where visibility is reduced. The gap should be at least doubled on wet roads")
P163 = Passage("163", "Using the road", "Overtaking",
               "You should\n- leave at least 1.5 metres when overtaking cyclists at speeds of up to 30mph")
S = AdvisorySettings(semantic_weight=0.0)


class Ret:
    def __init__(self, passages, answerable=True, reason=""):
        self.passages, self.answerable, self.reason, self.timings = passages, answerable, reason, {}


class FixedRetriever:
    def __init__(self, ret=None, delay_s=0.0, fail=False):
        self.ret, self.delay_s, self.fail = ret or Ret((P126, P163)), delay_s, fail

    def search(self, text, scene=None, k=5):
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("index file is corrupt")
        return self.ret


class ScriptedSLM:
    """Streams fixed sentences like the real SLM does, honouring the cancel hook between 'tokens'."""

    def __init__(self, sentences, cited=("126",), per_sentence_s=0.0):
        self.sentences, self.cited, self.per_sentence_s = sentences, cited, per_sentence_s
        self.stopped_early = False

    def generate(self, question, passages, scene=None, *, cancel=None, on_sentence=None, **_):
        for i, s in enumerate(self.sentences):
            time.sleep(self.per_sentence_s)
            if cancel is not None and cancel.is_set():
                self.stopped_early = True
                return Generated(" ".join(self.sentences[:i]), self.cited, "cancelled", 100, i * 10, 5.0, 5.0, 50.0)
            on_sentence(s, self.cited)
        return Generated(" ".join(self.sentences), self.cited, "done", 100, 40, 5.0, 5.0, 50.0)


def run(lane, question="what gap should I leave on a high-speed road", **kw):
    return asyncio.run(lane.execute_report(question, None, 0, **kw))


def trace(events):
    return [(e.type, e.stage) for e in events]


def test_extractive_run_emits_start_end_per_stage():
    events, spoken = [], []
    rep = run(AdvisoryRun(S, FixedRetriever(), speaker=spoken.append, on_event=events.append))
    assert trace(events) == [
        ("start", "run"), ("start", "retrieve"), ("end", "retrieve"), ("start", "route"), ("end", "route"),
        ("start", "generate"), ("end", "generate"), ("start", "validate"), ("end", "validate"),
        ("start", "speak"), ("end", "speak"), ("start", "speak"), ("end", "speak"), ("end", "run")]
    assert rep.advisory.route == "extractive" and "two-second gap" in rep.advisory.text
    assert rep.advisory.cited == ("126",) and rep.verdict.ok
    assert spoken == rep.spoken and all(e.run_id == events[0].run_id for e in events)
    assert {"retrieve_ms", "route_ms", "generate_ms", "validate_ms", "first_audio_ms", "total_ms"} <= set(rep.timings)
    assert events[-1].data["route"] == "extractive" and events[-1].data["ms"] > 0


def test_unanswerable_question_is_refused_honestly():
    spoken = []
    rep = run(AdvisoryRun(S, FixedRetriever(Ret((P126,), False, "out-of-scope:chit_chat")), speaker=spoken.append),
              "tell me a joke")
    assert rep.advisory.refused and rep.advisory.route == "refusal" and spoken == [S.refusal_text]


def test_failed_retrieval_is_an_error_event_and_a_short_apology():
    events = []
    rep = run(AdvisoryRun(S, FixedRetriever(fail=True), on_event=events.append))
    err = [e for e in events if e.type == "error"]
    assert err and err[0].stage == "retrieve" and err[0].data["code"] == "retrieve-failed"
    assert "corrupt" in err[0].data["message"]
    assert rep.advisory.refused and "can't look that up" in rep.advisory.text


def test_stage_timeout_is_reported_with_its_code():
    events = []
    s = S.model_copy(update={"retrieve_timeout_s": 0.1})
    rep = run(AdvisoryRun(s, FixedRetriever(delay_s=0.5), on_event=events.append))
    assert [e.data["code"] for e in events if e.type == "error"] == ["retrieve-timeout"]
    assert rep.advisory.refused


def test_whole_run_timeout():
    events = []
    s = S.model_copy(update={"retrieve_timeout_s": 5.0, "run_timeout_s": 0.2})
    rep = run(AdvisoryRun(s, FixedRetriever(delay_s=0.6), on_event=events.append))
    assert ("error", "run") in trace(events) and rep.fallback == "run-timeout"


def test_slm_sentences_are_validated_then_spoken_as_they_stream():
    spoken = []
    slm = ScriptedSLM(["Leave at least a two-second gap.", "Double it on wet roads."])
    rep = run(AdvisoryRun(S.model_copy(update={"route": "slm"}), FixedRetriever(), slm=slm, speaker=spoken.append))
    assert rep.advisory.route == "slm" and not rep.fallback and rep.verdict.ok
    assert spoken == ["Leave at least a two-second gap.", "Double it on wet roads."]


def test_ungrounded_slm_answer_falls_back_to_extractive_and_says_why():
    spoken, events = [], []
    slm = ScriptedSLM(["Leave a four-second gap.", "That is all."])
    rep = run(AdvisoryRun(S.model_copy(update={"route": "slm"}), FixedRetriever(), slm=slm, speaker=spoken.append,
                          on_event=events.append))
    assert rep.route == "slm" and rep.advisory.route == "extractive"
    assert "number 4" in rep.fallback
    assert "four-second" not in " ".join(spoken) and "two-second" in spoken[0]
    bad = [e for e in events if e.stage == "validate" and e.type == "end" and not e.data["ok"]]
    assert bad and "number 4" in bad[0].data["reasons"][0]


def test_preemption_stops_generation_and_speaks_no_more():
    cancel = threading.Event()
    spoken = []

    def speaker(sentence):
        spoken.append(sentence)
        cancel.set()  # an alert pre-empts the advisory while its first sentence plays

    slm = ScriptedSLM(["Leave at least a two-second gap.", "Double it on wet roads.", "Stay alert."],
                      per_sentence_s=0.02)
    rep = run(AdvisoryRun(S.model_copy(update={"route": "slm"}), FixedRetriever(), slm=slm, speaker=speaker,
                          cancel_event=cancel))
    assert rep.preempted and spoken == ["Leave at least a two-second gap."] and slm.stopped_early


class SteppingClock:
    """A run clock whose sleep moves its own time forward (isolates the hold from real waiting)."""

    def __init__(self) -> None:
        self.now = 0

    def now_ns(self) -> int:
        return self.now

    def perf_ns(self) -> int:
        return time.perf_counter_ns()

    async def sleep(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)


def test_advisory_waits_for_the_warning_to_clear_then_speaks():
    clk, spoken, events = SteppingClock(), [], []
    warning = Hazard(0, "collision", HazardLevel.WARNING, "car", distance_m=8.0)

    def situation():
        return ([warning] if clk.now < 3_000_000_000 else []), None

    lane = AdvisoryRun(S, FixedRetriever(), speaker=spoken.append, on_event=events.append, clock=clk,
                       situation=situation)
    rep = run(lane)
    held = [e for e in events if e.stage == "hold" and e.type == "end"][0]
    assert held.data["action"] == "speak" and clk.now >= 3_000_000_000
    assert spoken and not rep.dropped


def test_advisory_is_dropped_when_the_driver_stays_busy_past_its_ttl():
    clk, spoken = SteppingClock(), []
    busy = Hazard(0, "collision", HazardLevel.WARNING, "car", distance_m=8.0)
    lane = AdvisoryRun(S, FixedRetriever(), speaker=spoken.append, clock=clk, situation=lambda: ([busy], None))
    rep = run(lane)
    assert rep.dropped and spoken == [] and clk.now > S.workload.ttl_s * 1e9


def test_extractive_never_speaks_a_rule_number_it_does_not_cite():
    p = Passage("160", "Using the road", "Once moving",
                "Rule 277 tells you where to stop at the line. You should keep to the left unless overtaking.")
    rep = run(AdvisoryRun(S, FixedRetriever(Ret((p,)))), "where do I stop at the line, keep to the left")
    assert "277" not in rep.advisory.text and rep.verdict.ok
    assert "Rule 277, which is not cited" in rep.fallback  # the failed sentence was left out, and the log says why
    assert rep.advisory.text.strip() and not rep.advisory.refused
