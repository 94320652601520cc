"""An alert spoken in the middle of the driver's question: does the question keep its intent?

    python bench/alert_mid_question.py [--split dev] [--conditions clean,snr5] [--json-out FILE]

Each question of the split (Piper voice, the evaluation set) is cut at its mid-sentence word
boundary (``evalset.pause_for``, the split point of the pause bench); at the middle of that pause the
car starts speaking the "Hazard detection is running slow." alert (rendered by the configured voice,
as the runtime pre-renders it). The driver waits for it and goes on 0.4 s after it ends (plus the
rest of the pause). The stream runs as ``VoiceLane.audio_in`` and ``_hear`` run it: 100 ms blocks, the
real self-hearing gate (``activation.Gate``, mute while speaking plus its hang-over), the VAD, the
end-of-speech Joiner, Whisper (the configured model) and the intents table. "before" is
``speech.endpoint.hold_across_playback: false`` (the muted span counts as silence, as before),
"after" the shipped setting. A question keeps its intent when it is acted on as one utterance with
the right intent (a split acts on the fragment first; live, the reply to it then mutes the rest);
"kept whole" also needs the question's last word in what was acted on (the second half not dropped).
Prints one JSON document (also ``--json-out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vehicle_assist import clock, config
from vehicle_assist.speech import activation, asr, audio, endpoint, intents, vad
from vehicle_assist.speech.tts import load_renderer
from vehicle_assist.tools import evalset
from common import emit_json  # bench/common.py

ALERT = "Hazard detection is running slow."
RESUME_S = 0.4  # the driver goes on this long after the alert ends
SR, BLOCK = 16000, 1600


def with_alert(pcm: np.ndarray, alert_s: float) -> tuple[np.ndarray, float, float] | None:
    """The PCM with room for the alert in its longest inner pause; (pcm, alert start s, alert end s)."""
    loud = np.abs(pcm) > 0.01
    idx = np.flatnonzero(loud)
    if len(idx) == 0:
        return None
    quiet = ~loud[idx[0]:idx[-1]]
    best, run, best_end = 0, 0, 0
    for i, q in enumerate(quiet):  # the longest quiet run between first and last speech
        run = run + 1 if q else 0
        if run > best:
            best, best_end = run, i + 1
    mid = idx[0] + best_end - best // 2
    gap = np.zeros(int((alert_s + RESUME_S) * SR), np.float32)
    return np.concatenate([pcm[:mid], gap, pcm[mid:]]), mid / SR, mid / SR + alert_s


def run(pcm: np.ndarray, alert: tuple[float, float], recogniser, settings, hold: bool) -> dict:
    """The lane's stream logic over ``pcm`` with the car speaking during ``alert`` (stream seconds)."""
    ep = endpoint.EndpointOptions.from_settings(settings.endpoint)
    ep = endpoint.EndpointOptions(**{**ep.__dict__, "hold_across_playback": hold})
    now = {"t": 0.0}
    gate = activation.Gate(activation.PUSH_TO_TALK, is_speaking=lambda: alert[0] <= now["t"] < alert[1],
                           hangover_s=settings.activation.speaking_hangover_s)
    gate.pressed = True  # a recorded question is one long press (as VoiceLane with a held file)
    seg, joiner = vad.VadSegmenter(vad.VadOptions.from_settings(settings.vad)), endpoint.Joiner(ep)
    events, muted = [], []
    for i in range(0, len(pcm), BLOCK):
        t = now["t"] = i / SR
        dur = len(pcm[i:i + BLOCK]) / SR
        state = gate.state(int(t * 1e9))
        if state == activation.LISTENING:
            events += [(t, e) for e in seg.process(pcm[i:i + BLOCK], t)]  # the lane's time for a start: its block's
        elif state == activation.PLAYBACK and hold:
            seg.gated(dur)
            muted.append((t, dur))
    events += [(len(pcm) / SR, e) for e in seg.flush(len(pcm) / SR, "end-of-input")]
    for t, d in muted:
        joiner.muted(t, d)
    acted, held_s = [], 0.0
    for k, (t_emit, ev) in enumerate(events):
        if ev.utterance is None:
            continue
        utt = joiner.take(ev.utterance)
        tr = recogniser.transcribe(utt)
        if joiner.end(utt, tr.text) > 0:
            nxt = next((t for t, e in events[k + 1:] if e.kind == "start"), None)
            if nxt is not None and joiner.started(nxt):
                continue  # merged with what follows
            joiner.release()
        held_s = max(held_s, utt.held_s)
        if tr.text.strip():
            acted.append(tr.text)
    return {"acted": acted, "held_s": held_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--conditions", default="clean,snr5", help="comma list of clean,snr10,snr5,snr0")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    settings = config.load_app().speech
    snrs = {"clean": None, "snr10": 10.0, "snr5": 5.0, "snr0": 0.0}
    r = load_renderer(settings.tts.engine).render(ALERT)
    alert_s = len(r.pcm) / r.sample_rate
    recogniser = asr.load_backend(settings.asr.backend, asr.AsrOptions.from_settings(settings.asr))
    qs = [u for u in evalset.load_utterances(args.split, "question") if evalset.pause_for(u) is not None]
    t0 = clock.perf_ns()
    out = {"split": args.split, "alert": ALERT, "alert_s": round(alert_s, 2), "resume_after_alert_s": RESUME_S,
           "model": settings.asr.model, "n_questions": len(qs), "conditions": {}}
    for cond in args.conditions.split(","):
        res = {}
        for label, hold in (("before", False), ("after", True)):
            rows, kept, one, whole = [], 0, 0, 0
            for k, u in enumerate(qs):
                placed = with_alert(evalset.audio_for(u, None, voice="piper", pause=True), alert_s)
                pcm, a0, a1 = placed
                if snrs[cond] is not None:
                    pcm = audio.mix_at_snr(pcm, evalset.noise(evalset.NOISES[k % len(evalset.NOISES)]), snrs[cond],
                                           offset=k * 7919)
                r1 = run(pcm, (a0, a1), recogniser, settings, hold)
                got = intents.classify(r1["acted"][0], 0) if r1["acted"] else None
                ok = len(r1["acted"]) == 1 and got is not None and got.name == u.intent
                kept += ok
                last = intents.normalise(u.text).split()[-1]
                whole_ok = ok and last in intents.normalise(r1["acted"][0]).split()
                whole += whole_ok
                one += len(r1["acted"]) == 1
                rows.append({"id": u.id, "ref": u.text, "acted": r1["acted"], "held_s": r1["held_s"], "ok": ok, "whole": whole_ok,
                             "alert_at_s": round(a0, 2)})
                print(f"\r{cond} {label} {k + 1}/{len(qs)}", end="", file=sys.stderr, flush=True)
            print(file=sys.stderr)
            res[label] = {"kept_intent": round(kept / len(qs), 4), "kept_whole": round(whole / len(qs), 4), "one_utterance": round(one / len(qs), 4),
                          "wer_first_acted": round(evalset.wer([(r["ref"], r["acted"][0] if r["acted"] else "")
                                                                for r in rows]), 4),
                          "rows": rows}
        out["conditions"][cond] = res
    out["bench_s"] = round((clock.perf_ns() - t0) / 1e9, 1)
    import os
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    emit_json(out, args.json_out)
    for c, v in out["conditions"].items():
        print(f"{c}: kept intent before {v['before']['kept_intent']:.1%} after {v['after']['kept_intent']:.1%}",
              file=sys.stderr)


if __name__ == "__main__":
    main()
