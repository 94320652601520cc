"""End of speech that follows the driver: how long to hold (pure), merging a fragment with what
follows, the Joiner's state, and a real spoken question with a mid-sentence pause through the runtime."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from vehicle_assist import config, triplog
from vehicle_assist.messages import Utterance
from vehicle_assist.speech import endpoint
from vehicle_assist.speech.endpoint import EndpointOptions, Joiner, hold_s, merge, unfinished

OPTS = EndpointOptions(hold_question_s=0.85, hold_unfinished_s=1.2)


@pytest.mark.parametrize("text, hold", [
    ("Louder.", 0.0),
    ("Switch the warnings on.", 0.0),  # ends on "on" but is a whole command
    ("Mute the alerts for ten minutes.", 0.0),
    ("Mute the alerts.", 0.85),  # a duration may follow
    ("Volume", 0.85),  # recognised only by sound: "up" may follow
    ("What is the speed limit on a motorway?", 0.85),
    ("When am I allowed to use the", 1.2),
    ("Do I have", 1.2),
    ("When am I allowed...", 1.2),
    ("Hey car.", 1.2),  # only the wake phrase: the question follows
    ("Thank you.", 0.0),  # a noise phrase
    ("", 0.85),  # no words (a lone short word Whisper missed): hear it again with what follows
])
def test_hold_follows_what_was_said(text, hold):
    assert hold_s(text, OPTS) == pytest.approx(hold)


def test_disabled_endpoint_never_holds():
    assert hold_s("When am I allowed to use the", EndpointOptions(enabled=False)) == 0.0


def test_unfinished_endings_come_from_the_table():
    assert unfinished("Is it legal to park on the")
    assert not unfinished("Is it legal to park on the pavement?")


def _utt(start_s, seconds, value=0.1):
    pcm = np.full(int(seconds * 16000), value, np.float32)
    return Utterance(int(start_s * 1e9), int((start_s + seconds) * 1e9), pcm)


def test_merge_keeps_the_pause_as_silence():
    a, b = _utt(1.0, 1.0), _utt(2.7, 0.5, 0.2)
    m = merge(a, b)
    assert (m.t_start_ns, m.t_end_ns) == (a.t_start_ns, b.t_end_ns)
    assert len(m.pcm) == 16000 + int(0.7 * 16000) + 8000
    assert np.all(m.pcm[16000:16000 + 11200] == 0) and m.pcm[-1] == np.float32(0.2)


def test_joiner_merges_a_fragment_when_speech_resumes_within_the_hold():
    j = Joiner(OPTS)
    frag = _utt(0.0, 1.0)
    assert j.end(frag, "When am I allowed to use the") == pytest.approx(1.2)
    assert not j.due(1.5)
    assert j.started(1.9)  # within 1.0 + 1.2
    rest = _utt(1.9, 1.5)
    whole = j.take(rest)
    assert whole.t_start_ns == frag.t_start_ns and len(whole.pcm) > len(frag.pcm) + len(rest.pcm)
    assert j.held is None


def test_joiner_remembers_speech_that_resumed_while_the_fragment_was_transcribed():
    j = Joiner(OPTS)
    j.started(0.1)  # the fragment's own start: before its end, not a continuation
    j.started(1.6)  # the rest began while Whisper was still busy with the fragment
    assert j.end(_utt(0.0, 1.0), "When am I allowed to use the") > 0
    assert j.continued and not j.due(5.0)


def test_joiner_acts_when_the_hold_passes_without_speech():
    j = Joiner(OPTS)
    j.end(_utt(0.0, 2.0), "What is the speed limit on a motorway?")
    assert not j.due(2.5) and j.due(2.86)
    assert not j.started(3.5)  # too late: a new utterance, not a continuation
    j.release()
    nxt = _utt(3.5, 1.0)
    assert j.take(nxt) is nxt


def test_the_hold_does_not_run_while_the_car_speaks():
    """Playback mutes the mic: the driver cannot be heard going on, so the whole hold starts again
    when it ends, whether the playback came during the ASR (before end) or after."""
    j = Joiner(OPTS)
    j.muted(2.2, 0.5)  # an alert while Whisper was busy with the fragment (after its end)
    j.muted(1.0, 9.0)  # began before the fragment ended: not counted
    j.end(_utt(0.0, 2.0), "What is the speed limit on")  # hold 1.2 after the playback ends at 2.7
    assert j.deadline_s == pytest.approx(3.9)
    j.muted(3.0, 2.0)  # and another one while it is held: 1.2 after 5.0
    assert not j.due(6.1) and j.due(6.21)
    assert j.started(6.0)  # the driver went on after the alert: merged
    off = Joiner(EndpointOptions(hold_question_s=0.85, hold_unfinished_s=1.2, hold_across_playback=False))
    off.end(_utt(0.0, 2.0), "What is the speed limit on")
    off.muted(2.5, 2.0)
    assert off.due(3.21)  # as before the fix: the playback ate the hold


def test_merge_adds_up_the_playback_each_part_was_held_across():
    a = Utterance(0, 1_000_000_000, np.ones(16000, np.float32), 16000, 1.5)
    b = Utterance(1_500_000_000, 2_000_000_000, np.ones(8000, np.float32), 16000, 0.5)
    assert merge(a, b).held_s == pytest.approx(2.0)


def test_the_hold_waits_for_the_vads_onset_lag_and_counts_from_the_onset():
    """The VAD announces a start up to 2 x start_s after the speech began: a held fragment is acted on only once
    a start within its hold could no longer be announced, and the onset (not the announcement) is compared."""
    j = Joiner(OPTS, onset_lag_s=0.24)
    j.end(_utt(0.0, 1.0), "What is the tooth?")  # hold 0.85 -> deadline 1.85
    assert not j.due(1.9) and j.due(2.09)
    assert j.started(1.8)  # speech began at 1.8, announced at ~2.0: still the same question
    plain = Joiner(OPTS)
    plain.end(_utt(0.0, 1.0), "What is the tooth?")
    assert plain.due(1.86)


def test_the_hold_ends_without_the_onset_lag_once_the_vad_has_settled_past_it():
    """Sixth round: the onset lag is waited out only while the VAD may still announce a start within the hold
    (a speech frame pending); in silence the held question is acted on at the hold's end."""
    j = Joiner(OPTS, onset_lag_s=0.24)
    j.end(_utt(0.0, 1.0), "What is the tooth?")  # hold 0.85 -> deadline 1.85
    j.settled(1.80)  # the VAD has heard silence up to 1.80: not yet past the hold
    assert not j.due(1.86)
    j.settled(1.86)
    assert j.due(1.86)  # no lag in silence
    k = Joiner(OPTS, onset_lag_s=0.24)
    k.end(_utt(0.0, 1.0), "What is the tooth?")
    k.settled(1.79)  # a speech frame at 1.79 is pending: its start may yet be announced
    assert not k.due(1.9) and k.due(2.09)  # the lag as before
    assert k.started(1.79) and not k.due(2.5)  # and it was the same question


def test_short_spans_are_joined_to_the_utterance_next_to_them():
    shorts, j = endpoint.Shorts(OPTS), Joiner(OPTS)
    hey = Utterance(0, 500_000_000, np.ones(8000, np.float32), 16000, short=True)  # a clipped "Hey" (0-0.5 s)
    assert not shorts.after(hey, 0.3)  # nothing before it: kept
    rest = _utt(1.1, 1.5)  # "car, louder." began 0.6 s later
    whole = shorts.before(rest, 1.2)
    assert whole.t_start_ns == 0 and not whole.short and len(whole.pcm) > len(rest.pcm) + 8000
    late = shorts.after(Utterance(10_000_000_000, 10_300_000_000, np.ones(4800, np.float32), 16000, short=True), 10.05)
    assert not late and shorts.before(_utt(20.0, 1.0), 20.1).t_start_ns == 20_000_000_000  # too far before: not joined
    # "Volume ..." held, then an "up" too short to be an utterance: heard, merged behind the fragment
    vol = _utt(30.0, 0.8)
    shorts.ended(vol)
    assert j.end(vol, "Volume.") == pytest.approx(0.85)
    up = Utterance(31_300_000_000, 31_700_000_000, np.ones(6400, np.float32), 16000, short=True)
    assert j.started(31.35) and shorts.after(up, 31.35) and j.continues(up)
    merged = j.take(up)
    assert merged.t_start_ns == vol.t_start_ns and merged.t_end_ns == up.t_end_ns and not merged.short
    # with nothing held a short span is never heard alone
    assert not j.continues(up) and j.continues(_utt(40.0, 1.0))
    off = endpoint.Shorts(EndpointOptions(enabled=False))
    assert not off.after(hey, 0.3) and off.before(rest, 1.2) is rest


@pytest.mark.parametrize("command, said, rest, want", [
    ("slower", "Slow down.", "Your speech.", ("slower", ())),                   # the command finished
    ("what_was_that", "What was that?", "Last warning.", ("what_was_that", ())),
    ("mute", "Turn off the alerts.", "For 15 minutes.", ("mute", (("minutes", "15"),))),  # a new duration
    ("repeat", "Again.", "You repeat that, please.", ("repeat", ())),        # the same command, garbled
    ("louder", "Louder.", "Louder.", None),                                   # said twice as written: meant twice
    ("stop", "Stop.", "What is the speed limit on a motorway?", None),        # something else
    ("stop", "Stop.", "Cocky.", ("stop", ())),                                # "Stop ... talking": a stray piece of it
    ("repeat", "Repeat.", "Dad.", ("repeat", ())),
    ("stop", "Stop.", "Why?", None),                                          # a question word: a question
    ("stop", "Stop.", "Quieter.", None),                                      # another command as written
    ("stop", "Stop.", "The speed limit on this road.", None),                 # longer than a fragment
])
def test_continues_command(command, said, rest, want):
    got = endpoint.continues_command(command, said, rest)
    assert (None if got is None else (got.name, got.slots)) == want


def test_stray_fragment_keeps_the_acted_slots_and_can_be_off():
    got = endpoint.continues_command("mute", "Mute the alerts for 20 minutes.", "Cocky.", slots=(("minutes", "20"),))
    assert (got.name, got.slots) == ("mute", (("minutes", "20"),))  # the same as acted on: nothing acted again
    assert endpoint.continues_command("stop", "Stop.", "Cocky.", stray_max_words=0) is None
    assert endpoint.stray_fragment("Talking.") and endpoint.stray_fragment("Cocky dad.")
    assert not endpoint.stray_fragment("Cocky dad talking.") and not endpoint.stray_fragment("Where?")
    assert not endpoint.stray_fragment("Louder.") and not endpoint.stray_fragment("")


def test_joiner_does_not_hold_commands():
    j = Joiner(OPTS)
    assert j.end(_utt(0.0, 1.0), "Louder.") == 0.0
    assert j.held is None and not j.started(1.1)


def test_wait_for_rest_returns_when_the_driver_goes_on_or_the_hold_ends():
    async def run(resume_at):
        j = Joiner(OPTS)
        t0 = time.monotonic()
        j.end(_utt(0.0, 1.0), "How close can I park to a junction?")
        now = lambda: time.monotonic() - t0 + 1.0  # noqa: E731  (the utterance ended "now")
        if resume_at is not None:
            asyncio.get_running_loop().call_later(resume_at, j.started, now())
        return await endpoint.wait_for_rest(j, now, asyncio.sleep), time.monotonic() - t0

    went_on, waited = asyncio.run(run(0.2))
    assert went_on and waited < 0.6
    went_on, waited = asyncio.run(run(None))
    assert not went_on and 0.8 <= waited < 1.5


def test_a_held_question_is_acted_on_when_the_input_ends_on_a_clock_that_stopped():
    """A replay's clock stops with its drive: the hold cannot pass in drive time, so the input's end releases it
    (a question asked near a drive's end was lost: waited for forever, then dropped at shutdown)."""
    from vehicle_assist.clock import ReplayClock

    async def run():
        clock, j = ReplayClock(int(1.0e9)), Joiner(OPTS)
        assert j.end(_utt(0.0, 1.0), "How close can I park to a junction?") > 0
        asyncio.get_running_loop().call_later(0.1, j.close)
        went_on = await asyncio.wait_for(endpoint.wait_for_rest(j, lambda: clock.now_ns() / 1e9, clock.sleep), 5.0)
        return went_on, j.held, j.end(_utt(2.0, 3.0), "How close can I park to a junction?")

    went_on, held, later = asyncio.run(run())
    assert not went_on and held is None  # acted on, not merged and not lost
    assert later == 0.0  # after the input's end nothing is held


def _spoken_with_a_pause(first: str, second: str, gap_s: float, tmp_path, cfg=None) -> list[dict]:
    """``first`` ... ``gap_s`` of silence ... ``second``, spoken by Piper, through the runtime at a live
    microphone's pace (real VAD and Whisper tiny.en, push-to-talk held): the trip log's records."""
    from vehicle_assist.audio_out import NullSink
    from vehicle_assist.clock import WallClock
    from vehicle_assist.messages import AudioChunk
    from vehicle_assist.runtime import Sinks, Sources, build
    from vehicle_assist.speech import asr, audio
    from vehicle_assist.speech.tts import load_renderer

    import runtime_parts as rp

    piper = load_renderer("piper")
    a, b = piper.render(first), piper.render(second)
    gap = np.zeros(int(gap_s * a.sample_rate), np.float32)
    trim = lambda p: p[np.flatnonzero(np.abs(p) > 0.01)[0]:np.flatnonzero(np.abs(p) > 0.01)[-1] + 1]  # noqa: E731
    pcm = audio.resample(np.concatenate([trim(a.pcm), gap, trim(b.pcm)]), a.sample_rate, 16000)
    pcm = np.concatenate([np.zeros(8000, np.float32), pcm, np.zeros(32000, np.float32)])
    cfg = cfg or config.AppConfig()
    clock = WallClock()

    def mic():
        for i in range(0, len(pcm), 1600):
            yield AudioChunk(clock.now_ns(), pcm[i:i + 1600])
            time.sleep(0.1)  # a live microphone's pace

    parts = rp.parts(advisor=False)
    parts.asr = asr.load_backend("faster-whisper", asr.AsrOptions.from_settings(cfg.speech.asr))
    trip = tmp_path / "trip.jsonl"
    rt = build(cfg, Sources(audio=mic(), audio_is_held=True), clock, Sinks(NullSink(), trip), parts)
    asyncio.run(rt.run(duration_s=30))
    return triplog.read(trip)[1]


@pytest.mark.slow
def test_a_question_with_a_pause_is_one_utterance_through_the_runtime(tmp_path):
    """A Piper-spoken question with a 700 ms pause after "allowed", real VAD, real Whisper tiny.en:
    the runtime hears one question, not a fragment and a second half."""
    records = _spoken_with_a_pause("When am I allowed", "to use the hard shoulder on a motorway?", 0.7, tmp_path)
    intents = [r for r in records if r.get("topic") == "intents"]
    assert len(intents) == 1, intents
    text = intents[0]["msg"]["text"].lower()
    assert intents[0]["msg"]["name"] == "question" and "allowed" in text and "hard shoulder" in text


def test_the_rest_of_a_command_after_a_pause_is_not_a_second_action_through_the_runtime(tmp_path):
    """"What was that?" (a whole command: acted on at once) ... 600 ms ... "the last warning?": Piper voice, real
    VAD and Whisper tiny.en through the runtime; the rest is heard as the end of that command, not as a question."""
    records = _spoken_with_a_pause("What was that?", "The last warning?", 0.6, tmp_path)
    heard = [r["msg"]["text"] for r in records if r.get("topic") == "transcripts" and r["msg"]["text"]]
    intents = [r["msg"]["name"] for r in records if r.get("topic") == "intents"]
    assert len(heard) == 2, heard  # two utterances: the command, then its rest
    assert intents == ["what_was_that"], (heard, intents)  # once: not the last alert said twice


@pytest.mark.parametrize("stray_max_words, want", [(2, ["what_was_that"]), (0, ["what_was_that", "question"])])
def test_a_stray_word_after_a_command_is_not_a_second_action_through_the_runtime(tmp_path, stray_max_words, want):
    """"What was that?" (acted on at once; nothing spoken back with no alert yet) ... 600 ms ... "nice weather."
    (no command, no question word): Piper voice, real VAD and Whisper tiny.en through the runtime; the stray
    words are taken as a piece of the command just acted on (``speech.endpoint.stray_max_words``), not sent on
    as a question; with the rule off (0) they were a second action. (After a command with a spoken reply,
    "Louder.", the self-hearing gate takes the rest.)"""
    cfg = config.AppConfig()
    sp = cfg.speech.model_copy(update={"endpoint": cfg.speech.endpoint.model_copy(update={"stray_max_words": stray_max_words})})
    records = _spoken_with_a_pause("What was that?", "Nice weather.", 0.6, tmp_path, cfg.model_copy(update={"speech": sp}))
    heard = [r["msg"]["text"] for r in records if r.get("topic") == "transcripts" and r["msg"]["text"]]
    intents = [r["msg"]["name"] for r in records if r.get("topic") == "intents"]
    assert len(heard) == 2, heard  # two utterances: the command, then the stray words
    assert intents == want, (heard, intents)  # once, and no question
