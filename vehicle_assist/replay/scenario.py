"""Scenario files (``sim/scenarios/*.yaml``): a drive, scripted driver questions, faults, and
expectations written by a person from watching the drive (grammar in :mod:`.expect`).

```yaml
name: highway_adjacent_lanes_quiet
drive: highway_cars_1s          # sim/manifests/<name>.yaml, or a path relative to VA_HOME
start_s: 0                      # optional slice of the drive
end_s: 1.5
watched: |                      # what the person saw, with times (required)
  ...
questions:                      # spoken into the microphone stream at drive time t
  - {t: 0.1, text: "What gap should I leave?"}     # synthesized with TTSRenderer
  - {t: 3.0, audio: sim/speech/some.wav}           # or a recorded file
faults: {camera_outage: [{start_s: 1, end_s: 3}]}  # see faults.FaultPlan
expect:
  - alert forward-collision within 1.0 s of t=3.0
  - {check: "no alert between t=0 and t=2", why: "lead car steady"}
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from pydantic import Field, model_validator

from vehicle_assist import config, paths
from vehicle_assist.config import ConfigError, StrictModel
from vehicle_assist.replay.errors import ScenarioError
from vehicle_assist.replay.expect import Expectation, ExpectationError, parse
from vehicle_assist.replay.faults import FaultPlan


class Question(StrictModel):
    """A scripted driver question: text to synthesize, or a recorded audio file."""

    t: float = Field(ge=0, description="drive time (s) at which the driver starts speaking")
    text: str | None = None
    audio: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "Question":
        if (self.text is None) == (self.audio is None):
            raise ValueError("give exactly one of 'text' or 'audio'")
        return self


class Check(StrictModel):
    """An expectation with the reason a person gave for it."""

    check: str
    why: str = ""


class ScenarioFile(StrictModel):
    """The YAML schema of a scenario."""

    name: str | None = None
    drive: str
    start_s: float = Field(0.0, ge=0)
    end_s: float | None = Field(None, gt=0)
    watched: str = Field(min_length=1, description="what the person saw when watching the drive")
    questions: list[Question] = []
    faults: FaultPlan = FaultPlan()
    expect: list[str | Check] = Field(min_length=1)


class Scenario:
    """A loaded scenario with parsed expectations."""

    def __init__(self, path: Path, spec: ScenarioFile, expectations: list[Expectation]) -> None:
        self.path, self.spec, self.expectations = path, spec, expectations
        self.name = spec.name or path.stem

    @property
    def question_times(self) -> list[float]:
        return [q.t for q in self.spec.questions]

    def polarity(self) -> set[str]:
        """Which kinds of alert labels it carries: ``positive`` and/or ``negative``."""
        return {e.polarity for e in self.expectations if e.polarity}


def load(path: Path | str) -> Scenario:
    """Read and validate a scenario; any error names the file, the position and what was expected."""
    path = Path(path)
    try:
        spec = config.load(path, ScenarioFile)
    except ConfigError as err:
        raise ScenarioError("scenario-invalid", path, err.key, err.expected) from err
    expectations = []
    for i, item in enumerate(spec.expect):
        text, why = (item, "") if isinstance(item, str) else (item.check, item.why)
        try:
            expectations.append(parse(text, why))
        except ExpectationError as err:
            raise ScenarioError("expectation-invalid", path, f"expect.{i}", str(err)) from err
    qtimes = {q.t for q in spec.questions}
    for i, e in enumerate(expectations):
        if e.question_t is not None and e.question_t not in qtimes:
            raise ScenarioError("expectation-invalid", path, f"expect.{i}",
                                f"a question at t={e.question_t:g} (questions at {sorted(qtimes) or 'none'})")
    return Scenario(path, spec, expectations)


def discover(folder: Path | None = None) -> list[Path]:
    """Scenario files under ``sim/scenarios`` (or ``folder``), sorted."""
    folder = folder or paths.sim() / "scenarios"
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def resolve(spec: str | Path) -> Path:
    """A scenario name (``sim/scenarios/<name>.yaml``) or a path."""
    p = Path(spec)
    for c in ([p] if p.is_absolute() else [paths.resolve(p), paths.sim() / "scenarios" / f"{spec}.yaml"]):
        if c.is_file():
            return c
    raise ScenarioError("scenario-missing", spec, "(path)", "a scenario file or a name under sim/scenarios")


def is_scenario(path: Path) -> bool:
    """Whether a YAML file is a scenario (has ``expect:``) rather than a drive manifest."""
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        return False
    data = config.read_yaml(path)
    return isinstance(data, dict) and "expect" in data


def render_questions(questions: Iterable[Question], renderer: Any = None, cache: Path | None = None) -> list:
    """The questions as 16 kHz voice clips: recorded files are loaded; text is synthesized with
    ``renderer`` (a TTSRenderer) once and cached as 16-bit WAV under ``sim/generated/voice``, so every
    replay hears exactly the same waveform (and saves the rendering time)."""
    import hashlib

    from vehicle_assist.replay.drive import SAMPLE_RATE, VoicePcm
    from vehicle_assist.speech.audio import load_audio, resample
    from vehicle_assist.speech.tts import write_wav

    cache = cache or paths.sim() / "generated" / "voice"
    clips = []
    for q in questions:
        if q.text is not None:
            if renderer is None:
                from vehicle_assist.speech.tts import TTSRenderer

                renderer = TTSRenderer()
            key = json.dumps([q.text, getattr(renderer, "voice", None), getattr(renderer, "rate", None)])
            wav = cache / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.wav"
            if not wav.is_file():
                r = renderer.render(q.text)
                write_wav(wav, resample(r.pcm, r.sample_rate, SAMPLE_RATE), SAMPLE_RATE)
            pcm, _ = load_audio(wav, SAMPLE_RATE)  # always the stored 16-bit waveform, first time included
            clips.append(VoicePcm(q.t, pcm, label=q.text))
        else:
            pcm, _ = load_audio(paths.resolve(q.audio), SAMPLE_RATE)
            clips.append(VoicePcm(q.t, pcm, label=q.audio))
    return clips
