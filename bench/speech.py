"""Speech benchmark: WER (clean / 10 dB / 0 dB road noise), intent accuracy, wake phrase,
VAD-end -> transcript latency, ask-back rate, TTS first-sentence render time.

    python bench/speech.py [--split test] [--json-out FILE] [--backend faster-whisper]
    python bench/speech.py --split dev --prompt-ablation      # does a driving prompt lower WER?
    python bench/speech.py --agreement                        # openai-whisper vs faster-whisper
    python bench/speech.py --split dev --decode-ablation      # greedy/beam 5, with/without silence padding
    python bench/speech.py --tts [--repeats 5]                # time to first audio (sentence / first phrase / cache hit), Piper vs pyttsx3
    python bench/speech.py --split dev --noise-variant 1      # the same dev speech mixed with other noise (more dev items)
    python bench/speech.py --split dev --pauses --pause-variant 1  # each pause at another place and length (more dev items)

Prints one JSON document on stdout and a short summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from vehicle_assist import clock, config, fetch
from vehicle_assist.messages import Utterance
from vehicle_assist.speech import activation, asr, audio, endpoint, intents, lane, rescore, vad
from vehicle_assist.speech.tts import load_renderer, split_sentences
from vehicle_assist.tools import evalset
from common import emit_json  # bench/common.py (the script's folder is on sys.path)

CONDITIONS = {"clean": None, "snr10": 10.0, "snr5": 5.0, "snr0": 0.0, "snr-5": -5.0}
DRIVING_PROMPT = ("Driving questions: speed limit, motorway, roundabout, junction, overtaking, cyclist, "
                  "lorry, pedestrian crossing, fog lights, stopping distance. Commands: mute alerts, louder, quieter, repeat.")
ANSWERS = [
    "Keep at least a two-second gap to the vehicle in front. Double it on wet roads.",
    "Give the cyclist at least 1.5 metres when you pass at up to 30 mph. Give more at higher speeds.",
    "The national speed limit on a motorway is 70 mph for cars. Lower limits may be signed.",
    "Alerts muted for 10 minutes.",
    "Slow down. A pedestrian is crossing ahead.",
]


def pct(values: list[float], q: float) -> float | None:
    """A percentile (None for no values)."""
    return round(float(np.percentile(values, q)), 1) if values else None


def vad_events(pcm: np.ndarray, options: vad.VadOptions, block_ms: int = 100) -> list[tuple[float, vad.VadEvent]]:
    """Every VAD event of a stream with the stream time it is emitted at (end of its block)."""
    seg = vad.VadSegmenter(options)
    step = 16000 * block_ms // 1000
    out = []
    for i in range(0, len(pcm), step):
        out += [(min(i + step, len(pcm)) / 16000, ev) for ev in seg.process(pcm[i:i + step], i / 16000)]
    out += [(len(pcm) / 16000, ev) for ev in seg.flush(len(pcm) / 16000)]
    return out


def run_stream(pcm: np.ndarray, recogniser, options: vad.VadOptions, block_ms: int = 100,
               ep: endpoint.EndpointOptions = endpoint.EndpointOptions(enabled=False),
               wake_gate: activation.Gate | None = None,
               ropts: rescore.RescoreOptions = rescore.RescoreOptions()) -> dict:
    """Stream PCM through the VAD like a microphone; transcribe each utterance at its end event; with
    ``ep`` enabled, hold a possibly unfinished one and merge it with the next when the VAD opens one
    within the hold. Latency (VAD end -> intent) of an acted utterance = ASR time, or the hold when
    that is longer (a live system transcribes while it holds). With ``wake_gate``, ``wake`` is the hands-free
    decision on the first acted utterance with words (the text gate, then the check by sound: ``lane.decide``),
    with the text to act on (the rest of the stream's words appended). With ``ropts`` enabled, the first worded
    utterance's intent is checked by sound as the lane does (``rescored``: as push-to-talk, ``rescored_wake``: the
    words after the wake phrase; its time is added to the utterance's latency)."""
    events = vad_events(pcm, options, block_ms)
    lag = 2 * options.start_s
    joiner, shorts = endpoint.Joiner(ep, onset_lag_s=lag), endpoint.Shorts(ep)
    texts, confs, lat, durs, held, absorbed, finished = [], [], [], [], 0, 0, None
    wake, checked = None, []
    rescored: dict = {}
    first_info: dict = {}
    onset, acted = 0.0, None  # onset of the open utterance; last command acted on at once (name, words, end s, slots)
    for k, (t_emit, ev) in enumerate(events):
        if ev.kind == "start":
            onset = ev.onset_s if ev.onset_s is not None else ev.t_s
        if ev.short is not None and shorts.after(ev.short, onset):
            nxt_utt = ev.short  # a short span right after an utterance: heard only if it finishes a held one
        elif ev.utterance is not None:
            nxt_utt = shorts.before(ev.utterance, onset)
        else:
            continue
        if not joiner.continues(nxt_utt):
            continue
        utt = joiner.take(nxt_utt)
        t0 = clock.perf_ns()  # the VAD end event has just been emitted
        tr = recogniser.transcribe(utt)
        intents.classify(tr.text, tr.t_ns)
        asr_ms = (clock.perf_ns() - t0) / 1e6
        hold = joiner.end(utt, tr.text)
        wait_ms = 0.0
        if hold > 0:
            nxt = next(((e.onset_s if e.onset_s is not None else e.t_s) for t, e in events[k + 1:] if e.kind == "start"), None)
            if nxt is not None and joiner.started(nxt):
                held += 1
                continue  # the driver went on: merged into the next utterance, not acted on
            # from the VAD's end event to the hold's end: the lane acts when the VAD has settled past it (no speech
            # frame pending), i.e. at the hold's end here, as no start within it followed (a speech frame that
            # opened nothing, a noise blip just before the hold's end, would make it wait up to the onset lag)
            wait_ms = (joiner.deadline_s - t_emit) * 1000
            joiner.release()
        if tr.text and acted is not None and ep.enabled and \
                (utt.t_start_ns / 1e9 + options.pre_roll_s) - acted[2] <= ep.hold_question_s + lag and \
                (done := endpoint.continues_command(acted[0], acted[1], tr.text, slots=acted[3],
                                                    stray_max_words=ep.stray_max_words)) is not None:
            absorbed += 1  # the rest of the command just acted on: not a second action
            finished = done  # what was acted on (a new duration acts again: the driver's last word)
            texts.append(tr.text)
            acted = None
            continue
        if tr.text and not confs:  # the first utterance with words: which window read it, how noisy it was
            first_info = {"window": getattr(recogniser, "last_window", None),
                          "snr_est_db": round(asr.snr_estimate_db(utt.pcm), 1), "conf": round(tr.confidence, 3)}
        if tr.text and wake_gate is not None and wake is None:
            t1 = clock.perf_ns()
            wake = lane.decide(wake_gate, utt, tr, recogniser)
            if wake.reason == "wake-by-sound" or wake_gate.wants_sound_check(tr.text):
                checked.append((clock.perf_ns() - t1) / 1e6)
        if tr.text and not confs and ropts.enabled:
            # the first utterance with words: its intent checked by sound as the lane does (below min_confidence the
            # lane acts only on a confirmed command reading; the bench judges the text's intent otherwise, as before)
            rs = rescore.resolve(utt, tr, tr.text, recogniser, ropts)
            rescored["ptt"] = rs
            asr_ms += rs.ms
            if wake is not None and wake.accept and wake.text.strip():
                rescored["wake"] = rescore.resolve(utt, tr, wake.text, recogniser, ropts,
                                                   head=wake_gate.prefix if wake.reason == "wake-by-sound" else None)
        lat.append(max(asr_ms, wait_ms))
        durs.append(len(utt.pcm) / 16000)
        got = intents.classify(tr.text, 0) if tr.text else None
        acted = (got.name, tr.text, utt.t_end_ns / 1e9, got.slots) if got is not None and got.name in intents.COMMANDS else None
        if tr.text:
            texts.append(tr.text)
            confs.append(tr.confidence)
    if wake is not None and wake.accept:
        rest = " ".join(texts[1:])
        wake = activation.Decision(True, f"{wake.text} {rest}".strip() if wake.reason == "wake-by-sound"
                                   else wake_gate.decide(" ".join(texts)).text, wake.reason)
    return {"first": first_info, "rescored": rescored, "wake": wake, "wake_check_ms": checked, "text": " ".join(texts), "texts": texts, "confidence": min(confs) if confs else 0.0, "latency_ms": lat,
            "utt_s": durs, "segments": len(durs), "merged": held, "absorbed": absorbed, "finished": finished,
            "worded_segments": len(confs),
            "vad_segments": sum(ev.utterance is not None for _, ev in events)}


def hands_free_gate(settings) -> activation.Gate:
    """The configured activation gate in hands-free (wake phrase) mode, check by sound included."""
    return activation.Gate.from_settings(settings.activation.model_copy(update={"mode": activation.WAKE_PHRASE}))


def evaluate(split: str, recogniser, settings, conditions: dict, progress: bool = True, voice: str = "piper",
             pause: bool = False, ep: endpoint.EndpointOptions | None = None, kinds: tuple[str, ...] | None = None,
             noise_variant: int = 0, pause_variant: int = 0) -> dict:
    """All metrics for one split and backend (``voice`` piper | espeak; ``pause``: each utterance with a
    mid-sentence pause; ``ep``: end-of-speech options, default the config's)."""
    opts = vad.VadOptions.from_settings(settings.vad)
    ep = ep if ep is not None else endpoint.EndpointOptions.from_settings(settings.endpoint)
    wake_gate = hands_free_gate(settings)
    ropts = rescore.RescoreOptions.from_settings(settings.asr.rescore)
    utts = [u for u in evalset.load_utterances(split) if kinds is None or u.kind in kinds]
    out: dict = {"split": split, "voice": voice, "pause": pause, "noise_variant": noise_variant, "pause_variant": pause_variant, "rescore": ropts.__dict__, "endpoint": ep.__dict__, "n_utterances": len(utts),
                 "conditions": {}}
    for cond, snr in conditions.items():
        pairs = {"question": [], "command": [], "wake": []}
        intent_ok, intent_n, wake_hit, false_act, neg_s = 0, 0, 0, 0, 0.0
        check_ms, by_sound = [], 0
        lat3, lat_all, ask_back, found, one_utt, one_right, n_paused = [], [], 0, 0, 0, 0, 0
        one_right_worded = 0
        errors, rows, by_voice = [], [], {}
        for k, u in enumerate(utts):
            pcm = evalset.audio_for(u, snr, voice=voice, pause=pause and evalset.pause_for(u) is not None,
                                    noise_variant=noise_variant, pause_variant=pause_variant)
            n_paused += pause and evalset.pause_for(u) is not None
            r = run_stream(pcm, recogniser, opts, ep=ep, wake_gate=wake_gate, ropts=ropts)
            check_ms += r["wake_check_ms"]
            found += r["segments"] > 0
            hyp = r["text"]
            pairs[u.kind].append((u.text, hyp))
            by_voice.setdefault(evalset.voice_for(u, voice)[0], []).append((u.text, hyp))
            lat_all += r["latency_ms"]
            lat3 += [ms for ms, d in zip(r["latency_ms"], r["utt_s"]) if 2.5 <= d <= 3.5]
            low = not hyp or r["confidence"] < settings.asr.min_confidence
            ask_back += low
            decision = r["wake"] or wake_gate.decide(hyp)
            by_sound += decision.reason == "wake-by-sound"
            if u.kind == "wake":
                wake_hit += decision.accept
                text = decision.text if decision.accept else ""
            else:
                false_act += decision.accept
                neg_s += len(pcm) / 16000 - evalset.LEAD_S - evalset.TAIL_S
                text = hyp
            got = intents.classify(text, 0, default_minutes=settings.mute_default_minutes)
            rs = r["rescored"].get("wake" if u.kind == "wake" else "ptt") if r["worded_segments"] == 1 else None
            if rs is not None and (u.kind != "wake" or decision.accept):
                got = intents.Intent(0, "ask-back", text) if rs.ask_back else rs.intent  # what the lane acts on
            if r["finished"] is not None and (u.kind != "wake" or decision.accept):
                got = r["finished"]  # a command finished by the next utterance: the intent acted on
            ok = got.name == u.intent and (not u.slots or dict(got.slots) == u.slots)
            intent_ok += ok
            intent_n += 1
            one_utt += r["segments"] == 1
            one_right += r["segments"] == 1 and ok
            one_right_worded += r["worded_segments"] == 1 and ok
            rows.append({"id": u.id, "hyp": hyp, "wake": decision.reason, "acted": text, "texts": r["texts"], "segments": r["segments"],
                         "worded_segments": r["worded_segments"], "absorbed": r["absorbed"],
                         "vad_segments": r["vad_segments"], "merged": r["merged"],
                         "confidence": round(r["confidence"], 3), "intent": got.name, "first": r["first"],
                         "rescore": None if rs is None or not rs.scores else
                         {"route": rs.route, "scores": rs.scores, "commands": rs.commands, "chosen": rs.chosen.text if rs.chosen else None,
                          "ask_back": rs.ask_back, "ms": round(rs.ms, 1)},
                         "ok": ok, "wer": round(evalset.wer([(u.text, hyp)]), 3)})
            if not ok:
                errors.append({"id": u.id, "ref": u.text, "hyp": hyp, "intent": got.name, "want": u.intent})
            if progress:
                print(f"\r{cond} {k + 1}/{len(utts)}", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
        n_wake = sum(u.kind == "wake" for u in utts)
        out["conditions"][cond] = {
            "snr_db": snr,
            "wer": {kind: round(evalset.wer(p), 4) for kind, p in pairs.items()},
            "wer_questions_commands": round(evalset.wer(pairs["question"] + pairs["command"]), 4),
            "wer_all": round(evalset.wer(sum(pairs.values(), [])), 4),
            "intent_accuracy": round(intent_ok / intent_n, 4),
            "wake_detected": round(wake_hit / n_wake, 4) if n_wake else None,
            "wake_by_sound": by_sound,
            "wake_checks": {"n": len(check_ms), "p50_ms": pct(check_ms, 50)},
            "false_activations": false_act,
            "negative_speech_s": round(neg_s, 1),
            "false_activations_per_hour": round(false_act / (neg_s / 3600), 2) if neg_s else None,
            "vad_found": round(found / len(utts), 4),
            "one_utterance": round(one_utt / len(utts), 4),
            "one_utterance_right_intent": round(one_right / len(utts), 4),
            "one_worded_utterance_right_intent": round(one_right_worded / len(utts), 4),
            "split_rate": round(sum(r["segments"] > 1 for r in rows) / len(utts), 4),
            "vad_split_rate": round(sum(r["vad_segments"] > 1 for r in rows) / len(utts), 4),
            "paused_items": n_paused,
            "ask_back_rate": round(ask_back / len(utts), 4),
            "rescored": {"n": sum(r["rescore"] is not None for r in rows),
                         "p50_ms": pct([r["rescore"]["ms"] for r in rows if r["rescore"]], 50)},
            "vad_end_to_intent_ms": {"p50": pct(lat_all, 50), "p90": pct(lat_all, 90), "n": len(lat_all)},
            "vad_end_to_intent_ms_3s": {"p50": pct(lat3, 50), "p90": pct(lat3, 90), "n": len(lat3)},
            "wer_by_voice": {v: round(evalset.wer(p), 4) for v, p in sorted(by_voice.items())},
            "intent_errors": errors,
            "rows": rows,
        }
    return out


def real_recordings(recogniser, settings) -> dict:
    """WER on the real recordings that have reference transcripts, and wake false activations on all."""
    refs = evalset.load_refs()
    gate = hands_free_gate(settings)
    pairs, rows, fa, secs = [], [], 0, 0.0
    for name, ref in refs.items():
        pcm, sr = audio.load_audio(fetch.data_path("speech", name))
        utt = Utterance(0, int(len(pcm) / sr * 1e9), pcm, sr)
        tr = recogniser.transcribe(utt)
        accepted = lane.decide(gate, utt, tr, recogniser).accept
        fa += accepted
        secs += len(pcm) / sr
        rows.append({"file": name, "ref": ref, "hyp": tr.text, "confidence": round(tr.confidence, 3), "wake": accepted})
        if ref:
            pairs.append((ref, tr.text))
    return {"wer": round(evalset.wer(pairs), 4), "n_with_ref": len(pairs), "false_activations": fa,
            "speech_s": round(secs, 1), "rows": rows}


def code_first_sentences(n: int = 20) -> list[str]:
    """First sentences (4+ words) of every 20th chunk of the Highway Code index: what the extractive
    route speaks first, verbatim."""
    from vehicle_assist import paths

    rows = [json.loads(line) for line in (paths.home() / "knowledge" / "index" / "chunks.jsonl").read_text().splitlines() if line.strip()]
    firsts = [split_sentences(r["text"])[0] for r in rows[::20] if r["text"].strip() and "|" not in r["text"]]
    return [s for s in firsts if len(s.split()) >= 4][:n]


def tts_first_sentence(engine: str | None = None, n_repeat: int = 3, first_chunk_words: int | None = None,
                       texts: list[str] | None = None) -> dict:
    """Time from an answer's text to the first audio the speaker queues (``engine``: piper | pyttsx3,
    None: config), over the first sentence of typical answers, renderer warmed up as at start-up.
    ``whole``: the whole first sentence rendered; ``first_chunk``: what :class:`Speaker` renders first
    in silence (the sentence's first phrase, ``speech.tts.first_chunk_words``), the figure the driver
    waits for; ``cache_hit``: the same sentence again from the on-disk cache (a fresh temporary one).
    Cold figures use no cache, and each repeat a new rate so the in-memory reply cache never answers."""
    import tempfile

    from vehicle_assist.speech.tts import DiskCache, first_chunk

    words = config.load_app().speech.tts.first_chunk_words if first_chunk_words is None else first_chunk_words
    r = load_renderer(engine, cache_mb=0)
    r.render("Warm up.")
    firsts = [split_sentences(a)[0] for a in (texts or ANSWERS)]
    times, chunk_times, audio_s, chunk_audio_s = [], [], [], []
    for k in range(n_repeat):
        for s in firsts:
            out = r.render(s, 175 - k)
            times.append(out.render_ms)
            audio_s.append(out.duration_s)
            head = r.render(first_chunk(s, words)[0], 165 - k)
            chunk_times.append(head.render_ms)
            chunk_audio_s.append(head.duration_s)
    result = {"engine": r.engine, "first_chunk_words": words,
              "whole": {"p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "max_ms": round(max(times), 1),
                        "audio_s_p50": pct(audio_s, 50),
                        "real_time_factor_p50": round(float(np.median(np.array(times) / 1000 / np.array(audio_s))), 3)},
              "first_chunk": {"p50_ms": pct(chunk_times, 50), "p95_ms": pct(chunk_times, 95),
                              "max_ms": round(max(chunk_times), 1), "audio_s_p50": pct(chunk_audio_s, 50),
                              "chunks": [first_chunk(s, words)[0] for s in firsts]},
              "n": len(times)}
    if hasattr(r, "disk_cache"):
        with tempfile.TemporaryDirectory() as tmp:
            r.disk_cache = DiskCache(tmp, 10_000_000)
            hits = []
            for s in firsts:
                r.render(s, 150)  # miss: rendered and stored
                r._cache.clear()  # the in-memory reply cache must not answer
                hits.append(r.render(s, 150).render_ms)
            r.disk_cache = None
        result["cache_hit"] = {"p50_ms": pct(hits, 50), "p95_ms": pct(hits, 95), "max_ms": round(max(hits), 1)}
    return result


def agreement(split: str, settings, limit: int | None = None) -> dict:
    """Share of utterances (clean) that both backends transcribe identically (after normalisation)."""
    from vehicle_assist import models

    opts = asr.AsrOptions.from_settings(settings.asr)
    fw = asr.load_backend("faster-whisper", opts)
    fw32 = asr.FasterWhisperASR(models.load_asr(compute_type="float32"), opts)
    ow = asr.load_backend("openai-whisper", opts)
    utts = evalset.load_utterances(split)[:limit]
    same, same32, rows, ms = 0, 0, [], {"faster-whisper": [], "faster-whisper-float32": [], "openai-whisper": []}
    for k, u in enumerate(utts):
        utt = Utterance(0, 0, evalset.audio_for(u, None, 0.2, 0.3), 16000)
        a, a32, b = fw.transcribe(utt), fw32.transcribe(utt), ow.transcribe(utt)
        ms["faster-whisper"].append(a.asr_ms)
        ms["faster-whisper-float32"].append(a32.asr_ms)
        ms["openai-whisper"].append(b.asr_ms)
        eq = evalset.normalise(a.text) == evalset.normalise(b.text)
        same += eq
        same32 += evalset.normalise(a32.text) == evalset.normalise(b.text)
        if not eq:
            rows.append({"id": u.id, "faster_whisper": a.text, "openai_whisper": b.text, "faster_whisper_float32": a32.text})
        print(f"\ragreement {k + 1}/{len(utts)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {"split": split, "n": len(utts), "same": same, "agreement": round(same / len(utts), 4),
            "same_float32": same32, "agreement_float32": round(same32 / len(utts), 4),
            "asr_ms_p50": {k: pct(v, 50) for k, v in ms.items()}, "differences": rows}


def latency(settings, repeats: int = 20) -> dict:
    """VAD end -> transcript -> intent for one real 3.1 s utterance (LibriSpeech), streamed like a mic."""
    recogniser = asr.load_backend(settings.asr.backend, asr.AsrOptions.from_settings(settings.asr))
    pcm, _ = audio.load_audio(fetch.data_path("speech", "librispeech_251-137823-0002_testing_routine.wav"))
    pcm = np.concatenate([np.zeros(8000, np.float32), pcm, np.zeros(16000, np.float32)])
    opts = vad.VadOptions.from_settings(settings.vad)
    run_stream(pcm, recogniser, opts)  # warm-up
    ms, utt_s = [], []
    for _ in range(repeats):
        r = run_stream(pcm, recogniser, opts)
        ms += r["latency_ms"]
        utt_s += r["utt_s"]
    return {"utterance_s": round(float(np.median(utt_s)), 2), "p50_ms": pct(ms, 50), "p90_ms": pct(ms, 90), "n": len(ms)}


def rejudge(path: Path, settings) -> dict:
    """Intent accuracy, wake detection and false activations of a stored run (its transcripts) judged
    again with the current intents table and wake gate: no ASR, for tuning those tables on dev."""
    run = json.loads(path.read_text())
    act = settings.activation
    gate = activation.Gate(activation.WAKE_PHRASE, act.wake_phrase, act.wake_min_similarity,
                           heard_as=tuple(act.wake_heard_as.get(act.wake_phrase.lower(), ())))
    want = {u.id: u for u in evalset.load_utterances(run["split"])}
    out = {"split": run["split"], "from": str(path), "conditions": {}}
    for cond, v in run["conditions"].items():
        ok = wake = fa = 0
        errors = []
        for r in v["rows"]:
            u = want[r["id"]]
            d = gate.decide(r["hyp"])
            text = (d.text if d.accept else "") if u.kind == "wake" else r["hyp"]
            wake += u.kind == "wake" and d.accept
            fa += u.kind != "wake" and d.accept
            got = intents.classify(text, 0, default_minutes=settings.mute_default_minutes)
            good = got.name == u.intent and (not u.slots or dict(got.slots) == u.slots)
            ok += good
            if not good:
                errors.append({"id": u.id, "hyp": r["hyp"], "intent": got.name, "want": u.intent})
        n_wake = sum(want[r["id"]].kind == "wake" for r in v["rows"])
        out["conditions"][cond] = {"intent_accuracy": round(ok / len(v["rows"]), 4),
                                   "intent_accuracy_before": v["intent_accuracy"],
                                   "wake_detected": round(wake / n_wake, 4) if n_wake else None,
                                   "wake_detected_before": v["wake_detected"], "false_activations": fa,
                                   "intent_errors": errors}
    return out


def override(settings, assignments: list[str]):
    """``settings`` with ``section.key=value`` assignments applied (values parsed as YAML: 7, null, "text")."""
    import yaml

    for a in assignments:
        key, sep, raw = a.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"error: --set wants section.key=value, got {a!r}")
        section, name = key.split(".", 1)
        sub = getattr(settings, section, None)
        if sub is None or name not in type(sub).model_fields:
            raise SystemExit(f"error: no speech setting {key!r}")
        sub = type(sub).model_validate({**sub.model_dump(), name: yaml.safe_load(raw)})
        settings = settings.model_copy(update={section: sub})
    return settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", choices=["dev", "test"], help="evaluation split")
    ap.add_argument("--backend", default=None, choices=list(asr.BACKENDS), help="ASR backend (default: config)")
    ap.add_argument("--conditions", default="clean,snr10,snr5,snr0,snr-5", help="comma list of clean,snr10,snr5,snr0,snr-5")
    ap.add_argument("--voice", default="piper", choices=list(evalset.VOICE_KINDS),
                    help="piper (natural voice, the main condition) | espeak (stress condition, reported apart)")
    ap.add_argument("--pauses", action="store_true", help="each utterance with a 300-800 ms mid-sentence pause")
    ap.add_argument("--no-endpoint", action="store_true", help="act on every VAD utterance (no hold/merge)")
    ap.add_argument("--model", default=None, choices=list(asr.MODEL_ROLES), help="Whisper model (default: config)")
    ap.add_argument("--kinds", default=None, help="comma list of question,command,wake (default: all)")
    ap.add_argument("--pause-variant", type=int, default=0,
                    help="with --pauses, k > 0: each pause at another place and length (more dev items)")
    ap.add_argument("--noise-variant", type=int, default=0,
                    help="k > 0: each item mixed with the next noise recording (k on) at another place (more dev items)")
    ap.add_argument("--no-extras", action="store_true", help="skip the real recordings and the TTS timing")
    ap.add_argument("--prompt-ablation", action="store_true", help="compare WER without/with a driving-vocabulary prompt")
    ap.add_argument("--decode-ablation", action="store_true", help="compare beam size 1/5 and silence padding 0/1 s")
    ap.add_argument("--agreement", action="store_true", help="openai-whisper vs faster-whisper transcripts")
    ap.add_argument("--latency", action="store_true", help="only the VAD-end -> intent latency on a real 3 s utterance")
    ap.add_argument("--tts", action="store_true", help="only the first-sentence render time of both TTS engines")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a speech setting for this run, e.g. vad.threshold_db=7 or asr.beam_size=1 (repeatable)")
    ap.add_argument("--rejudge", type=Path, default=None, metavar="RUN.json",
                    help="judge a stored run's transcripts again with the current intents table and wake gate (no ASR)")
    ap.add_argument("--repeats", type=int, default=5, help="--tts: renderings of each first sentence")
    ap.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args()

    settings = override(config.load_app().speech, args.set)
    if args.model:
        settings = settings.model_copy(update={"asr": settings.asr.model_copy(update={"model": args.model})})
    conditions = {c: CONDITIONS[c] for c in args.conditions.split(",")}
    ep = endpoint.EndpointOptions.from_settings(settings.endpoint)
    if args.no_endpoint:
        ep = endpoint.EndpointOptions(enabled=False)
    kinds = tuple(args.kinds.split(",")) if args.kinds else None
    t0 = clock.perf_ns()
    if args.rejudge:
        result = {"rejudged": rejudge(args.rejudge, settings)}
    elif args.latency:
        result = {"latency": latency(settings)}
    elif args.tts:
        code = code_first_sentences()
        result = {"tts_first_sentence": {e: tts_first_sentence(e, n_repeat=args.repeats) for e in ("piper", "pyttsx3")},
                  "tts_first_sentence_code": {e: tts_first_sentence(e, n_repeat=1, texts=code) for e in ("piper", "pyttsx3")}}
    elif args.agreement:
        result = {"agreement": agreement(args.split, settings)}
    elif args.decode_ablation:
        result = {"split": args.split}
        fw_model = None
        for beam, pad_s in ((1, 0.0), (1, 1.0), (5, 0.0), (5, 1.0)):
            opts = asr.AsrOptions(beam_size=beam, initial_prompt=settings.asr.initial_prompt, pad_s=pad_s)
            rec = asr.FasterWhisperASR(fw_model, opts) if fw_model is not None else asr.FasterWhisperASR(options=opts)
            fw_model = rec.model
            ev = evaluate(args.split, rec, settings, conditions)
            result[f"beam{beam}_pad{pad_s:g}"] = {
                c: {"wer_questions_commands": v["wer_questions_commands"], "intent_accuracy": v["intent_accuracy"],
                    "latency_p50_ms": v["vad_end_to_intent_ms"]["p50"]} for c, v in ev["conditions"].items()}
    elif args.prompt_ablation:
        result = {"prompt": DRIVING_PROMPT, "split": args.split}
        fw_model = None
        for label, prompt in (("no_prompt", None), ("driving_prompt", DRIVING_PROMPT)):
            opts = asr.AsrOptions(beam_size=settings.asr.beam_size, initial_prompt=prompt, pad_s=settings.asr.pad_s)
            rec = asr.FasterWhisperASR(fw_model, opts) if fw_model is not None else asr.FasterWhisperASR(options=opts)
            fw_model = rec.model
            ev = evaluate(args.split, rec, settings, conditions)
            result[label] = {c: {"wer_all": v["wer_all"], "intent_accuracy": v["intent_accuracy"]}
                             for c, v in ev["conditions"].items()}
    else:
        backend = args.backend or settings.asr.backend
        recogniser = asr.load_backend(backend, asr.AsrOptions.from_settings(settings.asr))
        result = {"backend": backend, "model": settings.asr.model,
                  **evaluate(args.split, recogniser, settings, conditions, voice=args.voice, pause=args.pauses, ep=ep,
                             kinds=kinds, noise_variant=args.noise_variant,
                             pause_variant=args.pause_variant)}
        if not args.no_extras:
            result.update(real_recordings=real_recordings(recogniser, settings), tts_first_sentence=tts_first_sentence())
    result["bench_s"] = round((clock.perf_ns() - t0) / 1e9, 1)
    try:
        import os
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    emit_json(result, args.json_out)
    for c, v in result.get("conditions", {}).items():
        wake = f"{v['wake_detected']:.1%}" if v["wake_detected"] is not None else "-"
        print(f"{c}: WER q+c {v['wer_questions_commands']:.1%}, intent {v['intent_accuracy']:.1%}, one utt+right "
              f"{v['one_utterance_right_intent']:.1%} (worded {v['one_worded_utterance_right_intent']:.1%}), split {v['split_rate']:.1%} (VAD {v['vad_split_rate']:.1%}), wake "
              f"{wake}, FA {v['false_activations']} in {v['negative_speech_s']:.0f}s, "
              f"latency p50 {v['vad_end_to_intent_ms']['p50']} ms (3 s: {v['vad_end_to_intent_ms_3s']['p50']})",
              file=sys.stderr)


if __name__ == "__main__":
    main()
