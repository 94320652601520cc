"""Health checks: each model role proves itself by a real tiny inference on real data.

Each role is probed in its own child process (``python -m vehicle_assist.doctor ROLE``) so that
its load time, inference time and peak memory are its own and one crashing library cannot take
the others down.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any, Callable

from vehicle_assist import clock, fetch, models

# Real inputs for each probe: (data group, file) from configs/data.yaml.
DETECTOR_FRAME = ("frames", "highway_test1.jpg")
ASR_UTTERANCE = ("speech", "librispeech_251-137823-0002_testing_routine.wav")
ASR_EXPECTED_WORDS = ("testing", "routine")


@dataclass
class RoleCheck:
    """What the doctor found for one role."""

    role: str
    ok: bool
    source: str = ""
    load_ms: float = 0.0
    infer_ms: float = 0.0
    peak_rss_mb: float = 0.0
    detail: str = ""
    error: str = ""


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = clock.perf_ns()
    out = fn()
    return out, (clock.perf_ns() - start) / 1e6


def _input(group: str, name: str):
    p = fetch.data_path(group, name)
    if not p.is_file():
        raise FileNotFoundError(f"probe input {group}/{name} missing at {p}: run `vehicle-assist fetch {group}`")
    return p


def _probe_detector(res: models.Resolved) -> tuple[float, float, str]:
    import cv2

    image = cv2.imread(str(_input(*DETECTOR_FRAME)))
    model, load_ms = _timed(lambda: models.load_detector(res))
    model.predict(image, imgsz=res.options.get("imgsz", 320), verbose=False)  # warm-up
    result, infer_ms = _timed(lambda: model.predict(image, imgsz=res.options.get("imgsz", 320), verbose=False)[0])
    labels = [result.names[int(c)] for c in result.boxes.cls.tolist()]
    if "car" not in labels:
        raise AssertionError(f"no car found on {DETECTOR_FRAME[1]} (saw {labels})")
    return load_ms, infer_ms, f"{labels.count('car')} cars on {DETECTOR_FRAME[1]}"


def _probe_asr(res: models.Resolved) -> tuple[float, float, str]:
    from vehicle_assist.speech.tts import read_wav

    pcm, sr = read_wav(_input(*ASR_UTTERANCE))
    if sr != 16000:
        raise AssertionError(f"probe utterance must be 16 kHz, is {sr}")
    model, load_ms = _timed(lambda: models.load_asr(res))
    text, infer_ms = _timed(lambda: " ".join(s.text for s in model.transcribe(pcm, language="en", beam_size=1)[0]))
    if not all(w in text.lower() for w in ASR_EXPECTED_WORDS):
        raise AssertionError(f"transcript {text!r} lacks {ASR_EXPECTED_WORDS}")
    return load_ms, infer_ms, f"heard {text.strip()!r}"


def _probe_embedder(res: models.Resolved) -> tuple[float, float, str]:
    import numpy as np

    model, load_ms = _timed(lambda: models.load_embedder(res))
    texts = ["Keep a two-second gap to the vehicle in front.", "Leave enough space behind the car ahead.",
             "Fuel prices went up this week."]
    vecs, infer_ms = _timed(lambda: model.encode(texts, normalize_embeddings=True))
    near, far = float(np.dot(vecs[0], vecs[1])), float(np.dot(vecs[0], vecs[2]))
    if not near > far:
        raise AssertionError(f"related sentences not closer than unrelated ({near:.2f} <= {far:.2f})")
    return load_ms, infer_ms, f"dim {vecs.shape[1]}, related {near:.2f} > unrelated {far:.2f}"


def _probe_slm(res: models.Resolved) -> tuple[float, float, str]:
    llm, load_ms = _timed(lambda: models.load_slm(res))
    out, infer_ms = _timed(lambda: llm.create_chat_completion(
        messages=[{"role": "user", "content": "In three words: what should a driver do at a red light?"}],
        max_tokens=8, temperature=0.0))
    text = out["choices"][0]["message"]["content"].strip()
    if not text:
        raise AssertionError("the model generated no text")
    return load_ms, infer_ms, f"generated {text!r} ({out['usage']['completion_tokens']} tokens)"


def _probe_tts(res: models.Resolved) -> tuple[float, float, str]:
    from vehicle_assist.speech.tts import load_tts

    renderer, load_ms = _timed(lambda: load_tts(res))
    rendered, infer_ms = _timed(lambda: renderer.render("Vehicle ahead is braking."))
    wav = rendered.wav_bytes()
    if rendered.duration_s < 0.3 or float(abs(rendered.pcm).max()) < 0.05:
        raise AssertionError(f"rendered audio is empty or silent ({rendered.duration_s:.2f} s)")
    return load_ms, infer_ms, (f"{renderer.engine}: {rendered.duration_s:.2f} s at {rendered.sample_rate} Hz, "
                               f"{len(wav)} WAV bytes")


PROBES = {"detector": _probe_detector, "asr": _probe_asr, "embedder": _probe_embedder, "slm": _probe_slm, "tts": _probe_tts,
          "asr_base": _probe_asr, "tts_piper": _probe_tts}


def probe(role: str) -> RoleCheck:
    """Check one role in this process."""
    check = RoleCheck(role, ok=False)
    try:
        res = models.resolve(role)
        check.source = f"{res.origin}: {res.path}"
        check.load_ms, check.infer_ms, check.detail = PROBES[role](res)
        check.ok = True
    except Exception as err:  # the doctor reports every failure; it must not stop at the first
        check.error = f"{type(err).__name__}: {err}"
    check.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return check


def run_all(roles: tuple[str, ...] = models.ROLES, timeout_s: float = 300.0) -> list[RoleCheck]:
    """Check each role in a child process of its own."""
    out = []
    for role in roles:
        try:
            proc = subprocess.run([sys.executable, "-m", "vehicle_assist.doctor", role],
                                  capture_output=True, text=True, timeout=timeout_s)
            last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
            out.append(RoleCheck(**json.loads(last)) if last.startswith("{") else
                       RoleCheck(role, False, error=f"probe exited {proc.returncode}: {proc.stderr.strip()[-500:]}"))
        except subprocess.TimeoutExpired:
            out.append(RoleCheck(role, False, error=f"probe timed out after {timeout_s:.0f} s"))
    return out


if __name__ == "__main__":
    print(json.dumps(asdict(probe(sys.argv[1]))))
