"""Wake-phrase false activations per hour: a long stream of road noise with speech that does not
contain the wake phrase (the split's questions and commands in the Piper and espeak-ng voices, and
the real recordings), streamed through the VAD in 100 ms blocks and Whisper like a hands-free
microphone; every transcript is judged by the wake gate as configured.

    nice -n 10 python bench/wake_soak.py [--split test] [--seconds 3600] [--first N] [--json-out FILE]
    python bench/wake_soak.py --rejudge FILE     # judge a run's stored transcripts again (no ASR)

The stream: the split's road noise (bench/noise.py's sources) looped at a fixed level; every
``--every`` seconds one utterance, mixed in at an SNR cycling through 10 / 5 / 0 dB / clean (noise
off for that utterance), at a noise offset that moves on each time, so the same sentence is heard
differently each time round. Counts: utterances placed, VAD utterances, transcripts, false
activations (and their texts). JSON on stdout, a summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from vehicle_assist import clock, config, fetch
from vehicle_assist.speech import activation, asr, audio, vad
from vehicle_assist.tools import evalset

SNRS = (10.0, 5.0, 0.0, None)
NOISE = {"dev": ("car_interior_rumble_1.wav", "noisex92_leopard_military_vehicle_8k.wav"),
         "test": ("car_interior_rumble_2.wav", "noisex92_leopard_military_vehicle_8k.wav")}
NOISE_DBFS = -35.0  # road noise level between utterances (RMS)


def speech_items(split: str) -> list[tuple[str, np.ndarray]]:
    """(label, 16 kHz PCM) of every non-wake utterance of the split in both voices, and the real recordings."""
    items = []
    for u in evalset.load_utterances(split):
        if u.kind == "wake":
            continue
        for voice in evalset.VOICE_KINDS:
            items.append((f"{u.id}/{voice}", evalset.audio_for(u, None, 0.0, 0.0, voice=voice)))
    for name in evalset.load_refs():
        pcm, _ = audio.load_audio(fetch.data_path("speech", name))
        items.append((f"real/{name}", pcm))
    return items


def wake_gate(settings) -> activation.Gate:
    """The configured gate in hands-free mode (text gate and check by sound)."""
    return activation.Gate.from_settings(settings.activation.model_copy(update={"mode": activation.WAKE_PHRASE}))


NEAR_FLOOR = 0.3
"""Transcripts at least this near the phrase are scored by sound whatever the configured trigger, so a
stored run can be judged again with another trigger or margin (``--rejudge``)."""


def soak(split: str, seconds: float, every: float, recogniser, settings, first: int = 0) -> dict:
    """Stream ``seconds`` of noise + non-wake speech; transcribe every VAD utterance. ``first``: start at this
    placement (item, SNR and noise offset as the placement would have there), so a second run goes on from
    where an earlier one stopped instead of hearing the same hour again."""
    items = speech_items(split)
    noises = [audio.load_audio(fetch.data_path("noise", n))[0] for n in NOISE[split]]
    noises = [n / max(1e-9, float(np.sqrt(np.mean(n ** 2)))) * 10 ** (NOISE_DBFS / 20) for n in noises]
    seg = vad.VadSegmenter(vad.VadOptions.from_settings(settings.vad))
    gate = wake_gate(settings)
    rows, placed, t, k, off = [], 0, 0.0, first, first * int(every * 16000)

    def handle(events):
        for ev in events:
            if ev.utterance is None:
                continue
            tr = recogniser.transcribe(ev.utterance)
            row = {"t_s": round(ev.utterance.t_start_ns / 1e9, 1), "text": tr.text}
            d = gate.decide(tr.text)
            if tr.text.strip() and not d.accept and gate.near(tr.text) >= min(NEAR_FLOOR, gate.check.near_similarity):
                ps = recogniser.score_prefix(ev.utterance, gate.prefix, tr.text)
                row.update(margin=round(ps.margin, 3), prefix_logprob=round(ps.prefix_logprob, 3), after=ps.text,
                           score_ms=round(ps.ms, 1))
                if gate.wants_sound_check(tr.text):
                    d = gate.decide_by_sound(tr.text, ps)
            row.update(wake=d.accept, reason=d.reason)
            rows.append(row)

    while t < seconds:
        label, speech = items[k % len(items)]
        snr = SNRS[(k // len(items) + k) % len(SNRS)]
        n_len = int(every * 16000)
        block = np.zeros(max(n_len, len(speech) + 16000), np.float32)
        start = (len(block) - len(speech)) // 2
        block[start:start + len(speech)] = speech
        noise = noises[k % len(noises)]
        idx = (off + np.arange(len(block))) % len(noise)
        off += len(block)
        bed = noise[idx].astype(np.float32)
        if snr is not None:
            active = speech[np.abs(speech) > 0.01]
            s_rms = float(np.sqrt(np.mean(active ** 2))) if active.size else 0.0
            bed = bed / max(1e-9, float(np.sqrt(np.mean(bed ** 2)))) * s_rms * 10 ** (-snr / 20)
        else:
            bed = bed * 0.0
        block = block + bed
        for i in range(0, len(block), 1600):
            handle(seg.process(block[i:i + 1600], t + i / 16000))
        t += len(block) / 16000
        placed += 1
        k += 1
        if k % 10 == 0:
            print(f"\r{split}: {t:.0f}/{seconds:.0f} s, {len(rows)} utterances, "
                  f"{sum(r['wake'] for r in rows)} false activations", end="", file=sys.stderr, flush=True)
    handle(seg.flush(t))
    print(file=sys.stderr)
    return {"split": split, "audio_s": round(t, 1), "placed": placed, "first": first, "n_items": len(items), "rows": rows}


def judge(run: dict, settings) -> dict:
    gate = wake_gate(settings)
    hours = run["audio_s"] / 3600

    def accepted(r) -> bool:
        if not r["text"]:
            return False
        if gate.decide(r["text"]).accept:
            return True
        if "margin" not in r or not gate.wants_sound_check(r["text"]):
            return False
        return gate.decide_by_sound(r["text"], asr.PrefixScore(gate.prefix, r["after"], r["margin"], 0.0,
                                                               r["prefix_logprob"])).accept

    fas = [r for r in run["rows"] if accepted(r)]
    scored = [r for r in run["rows"] if "margin" in r]
    return {"audio_s": run["audio_s"], "utterances_placed": run["placed"], "vad_utterances": len(run["rows"]),
            "transcripts": sum(bool(r["text"]) for r in run["rows"]), "false_activations": len(fas),
            "checked_by_sound": sum(gate.wants_sound_check(r["text"]) for r in run["rows"] if r["text"]),
            "closest_margins": sorted((r["margin"], r["text"]) for r in scored)[-5:][::-1],
            "false_activations_per_hour": round(len(fas) / hours, 2) if hours else None,
            "false_activation_texts": [r["text"] for r in fas]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="test", choices=["dev", "test"])
    ap.add_argument("--seconds", type=float, default=3600.0, help="seconds of audio")
    ap.add_argument("--every", type=float, default=8.0, help="one utterance every this many seconds")
    ap.add_argument("--first", type=int, default=0, help="start at this placement (go on after an earlier run's "
                    "utterances_placed)")
    ap.add_argument("--rejudge", type=Path, default=None, help="judge a stored run's transcripts again (no ASR)")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    settings = config.load_app().speech
    t0 = clock.perf_ns()
    if args.rejudge:
        run = json.loads(args.rejudge.read_text())["run"]
    else:
        recogniser = asr.load_backend(settings.asr.backend, asr.AsrOptions.from_settings(settings.asr))
        run = soak(args.split, args.seconds, args.every, recogniser, settings, args.first)
    result = {"model": settings.asr.model, "judged": judge(run, settings), "run": run,
              "bench_s": round((clock.perf_ns() - t0) / 1e9, 1), "load_average": [round(x, 2) for x in os.getloadavg()]}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json_out:
        args.json_out.write_text(text)
    j = result["judged"]
    print(f"{run['split']}: {j['audio_s']:.0f} s, {j['utterances_placed']} utterances placed, {j['vad_utterances']} VAD "
          f"utterances, {j['false_activations']} false activations ({j['false_activations_per_hour']}/h): "
          f"{j['false_activation_texts'][:5]}", file=sys.stderr)


if __name__ == "__main__":
    main()
