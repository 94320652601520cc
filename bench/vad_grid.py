"""VAD thresholds on the evaluation set without Whisper (the VAD alone is cheap): for each setting,
the share of utterances the VAD finds (an utterance overlapping the speech) and splits, per noise
condition, and the utterances it opens on noise-only audio (bench/noise.py's sources, as recorded
and with 20 dB level steps). Tune on dev:

    python bench/vad_grid.py --split dev [--grid threshold_db=9,7,6,5 --grid min_utterance_s=0.3,0.2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

import numpy as np

from vehicle_assist import config
from vehicle_assist.speech import vad
from vehicle_assist.tools import evalset

from noise import SOURCES, present, source_audio  # bench/noise.py
from speech import CONDITIONS, vad_events  # bench/speech.py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--conditions", default="clean,snr10,snr5,snr0")
    ap.add_argument("--grid", action="append", default=[], help="name=v1,v2,... (VadOptions field)")
    ap.add_argument("--noise-seconds", type=float, default=300.0)
    ap.add_argument("--noise-variant", type=int, default=0, help="k > 0: the items mixed with other noise (evalset.audio_for)")
    args = ap.parse_args()
    base = vad.VadOptions.from_settings(config.load_app().speech.vad)
    grid = {k: [float(x) for x in v.split(",")] for k, v in (g.split("=", 1) for g in args.grid)} or {"threshold_db": [base.threshold_db]}
    utts = evalset.load_utterances(args.split)
    audio = {c: [evalset.audio_for(u, CONDITIONS[c], voice="piper", noise_variant=args.noise_variant) for u in utts]
             for c in args.conditions.split(",")}
    noise = [present(source_audio(g, n, p, args.noise_seconds), how) for g, n, p in SOURCES[args.split] for how in ("stream", "steps")]
    lead = int(evalset.LEAD_S * 16000)
    out = []
    for values in itertools.product(*grid.values()):
        opts = vad.VadOptions(**{**base.__dict__, **dict(zip(grid, values))})
        row = {"options": dict(zip(grid, values)), "found": {}, "split": {}}
        for c, pcms in audio.items():
            found = split = 0
            for pcm in pcms:
                ends = [e.utterance for _, e in vad_events(pcm, opts) if e.utterance is not None]
                speech_end = (len(pcm) - int(evalset.TAIL_S * 16000)) / 16000
                hits = [u for u in ends if u.t_end_ns / 1e9 > evalset.LEAD_S and u.t_start_ns / 1e9 < speech_end]
                found += bool(hits)
                split += len(hits) > 1
            row["found"][c], row["split"][c] = round(found / len(pcms), 4), round(split / len(pcms), 4)
        n_noise = sum(sum(e.utterance is not None for _, e in vad_events(p, opts)) for p in noise)
        row["noise_utterances_per_hour"] = round(n_noise / (len(noise) * args.noise_seconds / 3600), 1)
        out.append(row)
        print(row, file=sys.stderr, flush=True)
    print(json.dumps({"split": args.split, "base": base.__dict__, "rows": out}, indent=1))


if __name__ == "__main__":
    main()
