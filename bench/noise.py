"""False transcripts per hour on noise-only audio: the shared road-noise recordings (looped) and the
speech-free audio tracks of the drives, streamed through the VAD and Whisper like a microphone held
open (push-to-talk pressed the whole time: the worst case), with and without the noise gate.

    python bench/noise.py [--split dev|test|all] [--seconds 120] [--json-out FILE]

Split (fixed before tuning): dev = car_interior_rumble_1, the first half of the NOISEX-92 vehicle,
the 1 s Speech Commands background; test = car_interior_rumble_2, the second half of NOISEX-92, and
the drives' audio tracks. The gate is judged on dev; test is reported.
Three ways of presenting the noise: ``stream`` (as recorded, through the VAD), ``steps`` (the
level jumps 20 dB up and down every 3 s, as when the road surface changes or a window opens: the
VAD's noise floor lags and opens utterances on noise) and ``window`` (every 3 s window handed to
Whisper directly, as a held push-to-talk button or `listen --whole` would: no VAD at all).
Counts per source: VAD utterances, Whisper text without the gate, text with the gate, intents,
ask-backs. Prints JSON on stdout and a summary on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from vehicle_assist import clock, config, fetch, paths
from vehicle_assist.messages import Utterance
from vehicle_assist.speech import activation, asr, audio, endpoint, intents, vad
from common import emit_json  # bench/common.py (the script's folder is on sys.path)

SOURCES = {
    "dev": [("noise", "car_interior_rumble_1.wav", None), ("noise", "noisex92_leopard_military_vehicle_8k.wav", (0.0, 0.5)),
            ("noise", "speechcmd_background_noise_1s.wav", None)],
    "test": [("noise", "car_interior_rumble_2.wav", None), ("noise", "noisex92_leopard_military_vehicle_8k.wav", (0.5, 1.0)),
             ("drives", "highway_project_video_bridge_6.7s.mp4", None), ("drives", "highway_project_video_start_8s.mp4", None),
             ("drives", "highway_cars_1s.mp4", None)],
}


def source_audio(group: str, name: str, part: tuple[float, float] | None, seconds: float) -> np.ndarray:
    """The recording (or its ``part``, as fractions), looped to ``seconds``."""
    path = fetch.data_path(group, name)
    if not path.is_file() and paths.mirror():  # drives with audio tracks that the project does not fetch
        path = paths.mirror() / group / name
    pcm, _ = audio.load_audio(path)
    if part:
        pcm = pcm[int(part[0] * len(pcm)):int(part[1] * len(pcm))]
    reps = int(np.ceil(seconds * 16000 / max(1, len(pcm))))
    return np.tile(pcm, reps)[: int(seconds * 16000)]


def present(pcm: np.ndarray, how: str) -> np.ndarray:
    """The noise as recorded (stream, window) or with 20 dB level steps every 3 s (steps)."""
    if how != "steps":
        return pcm
    gain = np.where((np.arange(len(pcm)) // (3 * 16000)) % 2 == 0, 0.1, 1.0).astype(np.float32)
    return pcm * gain


def run_source(pcm: np.ndarray, recogniser, settings, gate_on: asr.NoiseGate, how: str = "stream") -> dict:
    """Present ``pcm`` (VAD stream or fixed windows); decode each utterance once and judge it with and without the gate."""
    seg = vad.VadSegmenter(vad.VadOptions.from_settings(settings.vad))
    ptt = activation.Gate(activation.PUSH_TO_TALK)
    ptt.pressed = True
    off = asr.NoiseGate(enabled=False)
    rows = []

    shorts = endpoint.Shorts(endpoint.EndpointOptions.from_settings(settings.endpoint))
    onset = [0.0]

    def handle(events):
        for ev in events:
            if ev.kind == "start" and ev.onset_s is not None:
                onset[0] = ev.onset_s
            if ev.short is not None:
                shorts.after(ev.short, onset[0])  # a short span is heard only joined to an utterance, as live
            if ev.utterance is None:
                continue
            u = shorts.before(ev.utterance, onset[0]) if how != "window" else ev.utterance
            scores = recogniser._decode(asr.pad(np.asarray(u.pcm, np.float32), recogniser.options.pad_s))
            row = {"t_s": round(u.t_start_ns / 1e9, 2), "audio_s": round(len(u.pcm) / 16000, 2),
                   "segments": [{"text": s.text, "avg_logprob": round(s.avg_logprob, 3), "no_speech_prob": round(s.no_speech_prob, 3),
                                 "compression_ratio": round(s.compression_ratio, 2)} for s in scores]}
            for label, gate in (("raw", off), ("gated", gate_on)):
                kept, reason = asr.gate_segments(scores, gate)
                text = " ".join(s.text.strip() for s in kept if s.text.strip())
                conf = asr.confidence(kept)
                decision = ptt.decide(text)
                intent = ask = None
                if decision.accept and text:
                    if conf < settings.asr.min_confidence:
                        ask = True
                    else:
                        got = intents.classify(decision.text, 0)
                        intent = None if got.name == "empty" else got.name
                row[label] = {"text": text, "rejected": reason, "intent": intent, "ask_back": bool(ask)}
            rows.append(row)

    pcm = present(pcm, how)
    if how == "window":
        from vehicle_assist.speech.vad import VadEvent

        win = 3 * 16000
        handle([VadEvent("end", i / 16000, Utterance(int(i / 16 * 1e6), int((i + win) / 16 * 1e6), pcm[i:i + win], 16000))
                for i in range(0, len(pcm) - win + 1, win)])
        return {"utterances": len(rows), "rows": rows}
    step = 1600
    for i in range(0, len(pcm), step):
        handle(seg.process(pcm[i:i + step], i / 16000))
    handle(seg.flush(len(pcm) / 16000))
    return {"utterances": len(rows), "rows": rows}


def summarise(results: dict, seconds: float) -> dict:
    hours = seconds / 3600
    out = {}
    for label in ("raw", "gated"):
        rows = [r[label] for res in results.values() for r in res["rows"]]
        n_text = sum(bool(r["text"]) for r in rows)
        n_int = sum(r["intent"] is not None for r in rows)
        n_ask = sum(r["ask_back"] for r in rows)
        out[label] = {"transcripts": n_text, "intents": n_int, "ask_backs": n_ask,
                      "transcripts_per_hour": round(n_text / hours, 1), "intents_per_hour": round(n_int / hours, 1),
                      "ask_backs_per_hour": round(n_ask / hours, 1)}
    out["vad_utterances"] = sum(res["utterances"] for res in results.values())
    out["vad_utterances_per_hour"] = round(out["vad_utterances"] / hours, 1)
    out["audio_s"] = round(seconds, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", choices=["dev", "test", "all"])
    ap.add_argument("--seconds", type=float, default=120.0, help="seconds of audio per source (looped)")
    ap.add_argument("--model", default=None, choices=list(asr.MODEL_ROLES), help="Whisper model (default: config)")
    ap.add_argument("--how", default="stream,steps,window", help="comma list of stream,steps,window")
    ap.add_argument("--json-out", type=Path, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a speech setting, e.g. vad.subtract=true (as bench/speech.py --set)")
    args = ap.parse_args()
    from speech import override  # bench/speech.py

    settings = override(config.load_app().speech, args.set)
    opts = asr.AsrOptions.from_settings(settings.asr)
    if args.model:
        opts = asr.AsrOptions(**{**opts.__dict__, "model": args.model})
    recogniser = asr.load_backend(settings.asr.backend, opts)
    t0 = clock.perf_ns()
    splits = ["dev", "test"] if args.split == "all" else [args.split]
    result: dict = {"model": opts.model, "gate": opts.noise_gate.__dict__, "seconds_per_source": args.seconds}
    hows = args.how.split(",")
    for split in splits:
        result[split] = {}
        for how in hows:
            per = {}
            for group, name, part in SOURCES[split]:
                key = f"{group}/{name}" + (f"[{part[0]}-{part[1]}]" if part else "")
                per[key] = run_source(source_audio(group, name, part, args.seconds), recogniser, settings,
                                      opts.noise_gate, how)
                print(f"{split} {how} {key}: {per[key]['utterances']} utterances", file=sys.stderr)
            result[split][how] = {"summary": summarise(per, args.seconds * len(per)), "sources": per}
    result["bench_s"] = round((clock.perf_ns() - t0) / 1e9, 1)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    emit_json(result, args.json_out)
    for split, how in ((sp, h) for sp in splits for h in hows):
        s = result[split][how]["summary"]
        print(f"{split} {how}: {s['audio_s']:.0f} s, {s['vad_utterances']} VAD utterances; raw {s['raw']['transcripts']} transcripts "
              f"({s['raw']['transcripts_per_hour']}/h), gated {s['gated']['transcripts']} ({s['gated']['transcripts_per_hour']}/h), "
              f"intents {s['gated']['intents']}, ask-backs {s['gated']['ask_backs']}", file=sys.stderr)


if __name__ == "__main__":
    main()
