"""Configuration: YAML files under ``configs/`` loaded through strict pydantic models.

A malformed file, an unknown key or a wrong type fails with :class:`ConfigError`, which names the
file, the key and what was expected. Every schema derives from :class:`StrictModel` (unknown keys
are errors, so typos never pass silently).

Environment overrides: ``VA_CONFIG`` names the onboard config file; ``VA_<SECTION>__<KEY>=value``
overrides one key of it (e.g. ``VA_RUNTIME__THREADS=2``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vehicle_assist import paths

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config file could not be used. ``str()`` says the file, the key and what was expected."""

    def __init__(self, file: Path | str, key: str, expected: str) -> None:
        self.file, self.key, self.expected = str(file), key, expected
        super().__init__(f"{file}: {key}: {expected}")


class StrictModel(BaseModel):
    """Base for every config schema: unknown keys are errors; instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file, turning syntax errors into a ConfigError with the position."""
    if not path.is_file():
        raise ConfigError(path, "(file)", "the file to exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(parse)"
        raise ConfigError(path, where, f"valid YAML ({getattr(err, 'problem', err)})") from err


def validate(data: Any, model: type[M], file: Path | str, env: bool = False) -> M:
    """Validate parsed data against ``model``; the first error becomes a ConfigError. With ``env``
    (the data holds ``VA_<SECTION>__<KEY>`` overrides), an error at an overridden key names the
    environment variable instead of the file."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        if first["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, first["loc"][:-1])
            expected = f"unknown key; expected one of: {', '.join(allowed)}"
        else:
            expected = f"{first['msg'].removeprefix('Value error, ')} (got {_short(first.get('input'))})"
        var = env_var_for(first["loc"]) if env else None
        where = f"environment variable {var}={os.environ[var]!r} (overriding {file})" if var else file
        raise ConfigError(where, key, expected) from err


def load(path: Path | str, model: type[M], overrides: dict[str, Any] | None = None) -> M:
    """Read and validate one YAML file, with optional nested overrides (from ``VA_*`` variables)."""
    path = Path(path)
    data = read_yaml(path)
    if overrides:
        data = _merge(data or {}, overrides)
    return validate(data, model, path, env=bool(overrides))


def config_path(name: str) -> Path:
    """A file under ``$VA_HOME/configs``."""
    return paths.configs() / name


def env_overrides(prefix: str = "VA_") -> dict[str, Any]:
    """``VA_SECTION__KEY=value`` environment variables as a nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for key, value in os.environ.items():
        if not key.startswith(prefix) or "__" not in key:
            continue
        parts = key[len(prefix):].lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        try:
            node[parts[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:  # not YAML (e.g. "runs/[x]"): the text itself; validation judges it
            node[parts[-1]] = value
    return out


def env_var_for(loc: tuple[Any, ...], prefix: str = "VA_") -> str | None:
    """The ``VA_<SECTION>__<KEY>`` variable that set the config key at ``loc`` (or a table above
    it), if one is set. ``loc`` may start below the section (a section validated alone)."""
    key = tuple(str(p).lower() for p in loc if not isinstance(p, int))
    for name in sorted(os.environ):
        if not name.startswith(prefix) or "__" not in name:
            continue
        parts = tuple(name[len(prefix):].lower().split("__"))
        if key[: len(parts)] == parts or (key and parts[-len(key):] == key):
            return name
    return None


def _merge(base: Any, extra: dict[str, Any]) -> Any:
    if not isinstance(base, dict):
        return extra
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out.get(k), v) if isinstance(v, dict) else v
    return out


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        ann = field.annotation
        inner = [a for a in getattr(ann, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)]
        current = inner[-1] if inner else ann
    fields = getattr(current, "model_fields", {})
    return sorted(fields) if fields else ["(none)"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["ConfigError", "StrictModel", "Field", "load", "read_yaml", "validate", "config_path", "env_overrides",
           "env_var_for"]


# --- the onboard config (configs/default.yaml): one section per concern ----------------------
# Each concern owns its section's fields; the sections are filled in by the issues that build them.


class KnowledgeSettings(StrictModel):
    """Rule sources and retrieval (vehicle_assist.knowledge)."""

    sources: str = "knowledge/sources.yaml"
    """Catalogue of rule sources (relative to VA_HOME)."""
    jurisdictions: list[str] = ["uk-gb"]
    """Which catalogue entries are active."""
    exclude_ids: str = "#intro$"
    """Regular expression of record ids left out of the index (section summaries that only list contents)."""
    index_dir: str = "knowledge/index"
    """Where the built index is persisted (git-ignored); rebuilt when sources or model change."""
    max_tokens: int = Field(256, ge=32, le=512)
    """Sub-chunk length limit in embedder tokens (all-MiniLM-L6-v2 reads 256)."""
    chunk_overlap_sentences: int = Field(1, ge=0, le=3)
    """Sentences repeated between neighbouring sub-chunks of a long rule."""
    k: int = Field(5, ge=1, le=20)
    """Passages returned per query."""
    candidates: int = Field(30, ge=5, le=200)
    """Candidates taken from each of BM25 and dense before rank fusion ("rrf")."""
    fusion: Literal["score", "rrf"] = "score"
    """How hybrid search fuses dense and BM25: "score" = per chunk, cosine + bm25_score_weight /
    (1 + the chunk's BM25 rank / bm25_rank_scale) over every chunk (dense decides, the lexical
    ranking nudges); "rrf" = reciprocal rank fusion of the two candidate lists (rrf_k, bm25_weight)."""
    bm25_score_weight: float = Field(0.10, ge=0)
    """Bonus of the best BM25 chunk in "score" fusion (dense cosine has weight 1)."""
    bm25_rank_scale: float = Field(10.0, gt=0)
    """BM25 rank at which the "score" fusion bonus has halved."""
    rrf_k: float = Field(60.0, gt=0)
    """Reciprocal-rank-fusion constant."""
    bm25_weight: float = Field(1.0, ge=0)
    """Weight of the lexical ranking in rank fusion (dense has weight 1)."""
    other_audience_factor: float = Field(0.8, gt=0, le=1)
    """Fused-score factor for sections written for other road users (pedestrians, cyclists...)."""
    normalize_queries: bool = True
    """Rewrite spoken questions (fillers, numbers in words, everyday words) before searching."""
    answerability: Literal["model", "threshold"] = "model"
    """Answerability: "model" = the logistic model in knowledge/answerability.yaml (fitted on dev by
    bench/fit_answerability.py; the threshold below is used if it was fitted for another embedder),
    "threshold" = reject_min_dense alone. The out-of-scope table applies in both."""
    reject_min_dense: float = Field(0.33, ge=-1, le=1)
    """Answerability without the model: top dense cosine below this rejects the question."""
    reject_out_of_scope: bool = True
    """Answerability: reject questions matching the out-of-scope table (prices, other countries...)."""
    embed_int8: bool = False
    """Dynamic int8 quantisation of the torch embedder (faster build and queries; vectors differ slightly)."""
    encoder: Literal["onnx", "torch"] = "onnx"
    """Embedding backend: onnx (exported once and cached, run with onnxruntime, no torch at query
    time; falls back to torch if the model cannot be exported) or torch (sentence-transformers)."""
    build_threads: int = Field(0, ge=0, le=256)
    """Threads for a full index build (an offline step); 0 = all cores. Queries use runtime.threads.embedder."""
    adapter_weight: float = Field(0.5, ge=0, le=1)
    """Share of the dense score taken from the query adapter (knowledge/adapter.py: a linear map on
    the query embedding fitted at every index build on pseudo-queries from the Code's own titles
    and sentences and on the labelled dev questions, ``adapter_questions``); 0 = off (the raw query
    vector ranks; no rebuild needed to switch)."""
    adapter_l2: float = Field(0.1, ge=0)
    """L2 penalty on the adapter matrix (keeps it near the identity map)."""
    adapter_epochs: int = Field(5, ge=1, le=100)
    """Passes over the pseudo-queries when fitting the adapter."""
    adapter_questions: str = "bench/data/questions.jsonl"
    """Labelled driver questions (JSONL with question, scene, rule_ids, answerable, split; relative
    to VA_HOME) added to the adapter's fit, only the ``adapter_question_split`` items; "" = none (the
    Code's pseudo-queries alone). A missing file means none."""
    adapter_question_split: str = "dev"
    """Which split of ``adapter_questions`` the adapter learns from (never the test split)."""
    adapter_question_repeat: int = Field(10, ge=0, le=100)
    """Times each labelled question enters the fit (weighs ~160 questions against ~3400
    pseudo-queries; chosen by cross-validation on dev); 0 = none."""


class CameraCalibration(StrictModel):
    """Pinhole camera: focal length and principal point in pixels at ``width`` x ``height``.

    ``cx`` is where the road straight ahead meets the horizon (the corridor's centre line) and
    ``cy`` the horizon row; both are measured per camera (config) or per drive (manifest).
    """

    width: int = Field(1280, gt=0)
    height: int = Field(720, gt=0)
    focal_px: float = Field(1150.0, gt=0)
    cx: float = 640.0
    cy: float = 430.0
    mount_height_m: float = Field(1.25, gt=0)

    def scaled(self, width: int, height: int) -> "CameraCalibration":
        """The same camera seen at another resolution (frames resized, not cropped)."""
        if (width, height) == (self.width, self.height):
            return self
        s = width / self.width
        return CameraCalibration(width=width, height=height, focal_px=self.focal_px * s, cx=self.cx * s,
                                 cy=self.cy * height / self.height, mount_height_m=self.mount_height_m)


class RoiSettings(StrictModel):
    """The higher-resolution pass over the road ahead (far vehicles are a few pixels at 320 px)."""

    every: int = Field(1, ge=0)
    """Run it on every Nth frame (0: never)."""
    size_frac: float = Field(0.25, gt=0.05, le=1.0)
    """Side of the square region, as a fraction of the frame width."""
    below_frac: float = Field(0.1, ge=0, le=0.5)
    """How far the region's centre sits below the horizon, as a fraction of its side."""
    imgsz: int = Field(320, ge=64, le=1280)
    part_area_factor: float = Field(1.5, ge=1.0)
    """A whole-frame box this many times the area of the road-ahead box it overlaps (IoU > 0.3) wins:
    the region saw only a part of the object."""


class TrackerSettings(StrictModel):
    """ByteTrack (Ultralytics) thresholds, and how much box history a track keeps."""

    high_thresh: float = Field(0.25, gt=0, lt=1)
    low_thresh: float = Field(0.1, gt=0, lt=1)
    new_track_thresh: float = Field(0.25, gt=0, lt=1)
    buffer_frames: int = Field(30, ge=1)
    match_thresh: float = Field(0.8, gt=0, le=1)
    history_s: float = Field(2.0, gt=0)
    switch_frames: int = Field(3, ge=1)
    """A track's box history restarts on another detector pass only once that pass has given its box on
    this many consecutive matches; a single frame from the other pass is left out of the history (both
    passes run on every frame, and an object near the road-ahead square's border flips between them)."""


class PerceptionSettings(StrictModel):
    """Camera, detector, tracker (vehicle_assist.perception)."""

    source: str = "0"
    """Camera index, video file, rtsp:// or http(s):// URL, or a folder of images."""
    imgsz: int = Field(320, ge=64, le=1280)
    """Detector input size for the full-frame pass."""
    conf: float = Field(0.25, gt=0, lt=1)
    backend: Literal["auto", "ultralytics", "onnxruntime"] = "auto"
    """Ultralytics' predictor (any weights format) or the lean ONNX Runtime path (.onnx only, same
    boxes, half the CPU); auto: onnxruntime for .onnx weights, else ultralytics."""
    classes: list[str] = ["car", "truck", "bus", "motorcycle", "bicycle", "person"]
    """Road-relevant COCO classes kept from the detector; all others are dropped at the boundary."""
    full_every: int = Field(2, ge=1)
    """Run the full-frame pass on every Nth frame (the road-ahead pass fills the others)."""
    rect: bool = False
    """Letterbox the full-frame pass to the frame's aspect (padding to a multiple of 32 only): a 16:9
    frame at imgsz 640 runs at 640x384. Needs an any-size detector (derived from fixed ONNX weights)."""
    nms_iou: float = Field(0.7, gt=0, le=1)
    nms_groups: list[list[str]] = []
    """Classes that suppress each other in NMS (one vehicle is not a car, a truck and a bus at once,
    one bike not a bicycle and a motorcycle): e.g. ``[[car, truck, bus], [bicycle, motorcycle]]``."""
    riders: bool = False
    """Fold a person riding a bicycle/motorcycle into one cyclist/motorcyclist detection."""
    rider_overlap: float = Field(0.3, gt=0, le=1)
    """Least fraction of the person's box inside the bike's for it to be the rider."""
    parallel_passes: bool = False
    """Run the road-ahead pass on a second thread while the full pass runs (ONNX Runtime path): the same
    boxes, the same CPU, about one pass less wall time a frame when a second core is free."""
    roi: RoiSettings = RoiSettings()
    tracker: TrackerSettings = TrackerSettings()
    rate_hz: float = Field(25.0, gt=0)
    """The declared frame rate of the lane; below lagging_factor x this, perception-lagging is raised."""
    lagging_factor: float = Field(0.6, gt=0, le=1)
    lagging_window_s: float = Field(2.0, gt=0)
    camera_lost_after_s: float = Field(1.0, gt=0)
    """No frame for this long raises camera-lost."""
    retry_initial_s: float = Field(0.5, gt=0)
    retry_max_s: float = Field(8.0, gt=0)
    calibration: CameraCalibration | None = None
    """This camera's calibration; None: the default in configs/hazards.yaml."""


class VadSettings(StrictModel):
    """Voice-activity detection (vehicle_assist.speech.vad): thresholds over the tracked noise floor."""

    frame_ms: int = Field(20, ge=10, le=50, description="analysis frame length")
    threshold_db: float = Field(7.0, ge=3.0, le=30.0, description="speech-band energy above the noise floor that counts as speech")
    min_energy_dbfs: float = Field(-55.0, description="frames quieter than this are never speech")
    start_s: float = Field(0.12, ge=0.02, description="speech needed within the start window to open an utterance")
    min_utterance_s: float = Field(0.16, ge=0.05, description="shorter utterances are discarded")
    max_utterance_s: float = Field(12.0, ge=1.0, le=30.0, description="an utterance is cut here (Whisper's window is 30 s)")
    trailing_silence_s: float = Field(0.5, ge=0.1, description="silence that ends an utterance")
    pre_roll_s: float = Field(0.25, ge=0.0, description="audio kept before the detected start")
    subtract: bool = Field(True, description="noise-adaptive front end: spectral subtraction when the noise floor is high")
    subtract_factor: float = Field(2.0, ge=0.0, le=5.0, description="over-subtraction factor a (P - a N)")
    subtract_threshold_db: float = Field(5.0, ge=1.0, le=30.0, description="subtracted energy over N exp(-a) that counts as speech")
    subtract_engage_dbfs: float = Field(-50.0, description="noise floor (speech band) above which the subtraction is used")
    subtract_release_db: float = Field(3.0, ge=0.0, description="hysteresis: released this far below the engage level")


class NoiseGateSettings(StrictModel):
    """When Whisper's text is taken for noise (vehicle_assist.speech.asr.noise_reason); tuned on dev."""

    enabled: bool = True
    no_speech_prob: float = Field(0.5, ge=0.0, le=1.0, description="no-speech probability above this ...")
    no_speech_logprob: float = Field(-0.7, le=0.0, description="... with a mean token log-prob below this: noise")
    min_logprob: float = Field(-1.2, le=0.0, description="a segment less sure than this (mean token log-prob) is noise")
    max_compression_ratio: float = Field(2.4, gt=1.0, description="a more repetitive segment is noise (a hallucination loop)")


class RescoreSettings(StrictModel):
    """Commands rescored by sound when the transcript's intent is uncertain (vehicle_assist.speech.rescore)."""

    enabled: bool = True
    max_candidates: int = Field(3, ge=1, le=8, description="command examples scored against the audio (nearest by sound, one per command)")
    min_similarity: float = Field(0.6, ge=0.0, le=1.0, description="a short question is checked when a command example is this near by sound")
    margin: float = Field(5.0, ge=0.0, description="a command reading within this log-probability of the transcript is taken")
    sound_only: Literal["ask", "keep"] = Field("ask", description="a command matched only by sound that the audio does not "
                                               "confirm: ask again (ask) or act on it (keep)")
    sound_lead: float = Field(2.0, ge=0.0, description="with ask: a command by sound is kept all the same when its own "
                              "reading beats every other command's by this much log-probability")


class AsrSettings(StrictModel):
    """Speech recognition (vehicle_assist.speech.asr)."""

    backend: Literal["faster-whisper", "openai-whisper"] = "faster-whisper"
    model: Literal["tiny.en", "base"] = Field("tiny.en", description="Whisper model: tiny.en (role asr) or base (role asr_base, assembled from its PyPI parts)")
    beam_size: int = Field(5, ge=1, le=5, description="1 = greedy; 5 lowered WER on the dev split (docs/speech.md)")
    pad_s: float = Field(1.0, ge=0.0, le=5.0, description="seconds of silence added before and after an utterance before decoding")
    transcribe_ahead: bool = Field(True, description="the runtime starts transcribing when the driver's speech has "
                                   "stopped 0.2 s, and uses it if the utterance ends there (docs/speech.md, sixth round)")
    encoder_tail_s: float = Field(18.0, ge=0.0, le=30.0, description="Whisper's encoder runs on the padded utterance "
                                  "plus this much of the silence after it, at most its 30 s window (0: the whole window, "
                                  "as trained); a repeated transcript is decoded again on the whole window (docs/speech.md, sixth round)")
    min_confidence: float = Field(0.4, ge=0.0, le=1.0, description="below this the driver is asked to repeat")
    initial_prompt: str | None = Field(None, description="decoder prompt (driving vocabulary); None = no prompt")
    ask_back: str = "Sorry, say that again?"
    noise_gate: NoiseGateSettings = NoiseGateSettings()
    rescore: RescoreSettings = RescoreSettings()


class WakeCheckSettings(StrictModel):
    """Wake phrase by sound (vehicle_assist.speech.activation.accept_by_sound): a transcript whose first words
    are near the phrase but not accepted as written is scored against the phrase by Whisper itself."""

    enabled: bool = True
    near_similarity: float = Field(0.6, ge=0.0, le=1.0, description="how near (per-word sound similarity) the "
                                   "transcript's first words must be to the phrase or a rendering to be checked; 0: every transcript")
    min_margin: float = Field(-6.5, le=0.0, description="accept when log P(phrase reading) - log P(transcript) is at least this")
    min_prefix_logprob: float = Field(-3.0, le=0.0, description="and the phrase's own tokens average at least this log-probability")


class ActivationSettings(StrictModel):
    """How the assistant decides to listen (vehicle_assist.speech.activation)."""

    mode: Literal["push_to_talk", "wake_phrase"] = "push_to_talk"
    wake_phrase: str = "hey car"
    wake_min_similarity: float = Field(0.7, ge=0.3, le=1.0, description="per-word similarity a transcript's first words need to the wake phrase")
    speaking_hangover_s: float = Field(0.3, ge=0.0, description="the mic stays gated this long after the assistant stops speaking")
    button: str = Field("key", pattern=r"^(key|none|gpio:.+)$",
                        description="push-to-talk button of a live run: key (Enter on the terminal toggles), gpio:PATH[:active_low], or none")
    wake_heard_as: dict[str, list[str]] = Field(
        default_factory=lambda: {"hey car": ["ok car", "okay car", "hey carter", "k car", "vacar", "take our", "a car,"]},
        description="per wake phrase, how the ASR is known to mishear it (learned on the dev split); matched like the phrase")
    wake_check: WakeCheckSettings = Field(default_factory=WakeCheckSettings)


class EndpointSettings(StrictModel):
    """How long to keep listening after the VAD's end before acting (vehicle_assist.speech.endpoint)."""

    enabled: bool = True
    hold_question_s: float = Field(0.85, ge=0.0, le=3.0, description="after a question that looks finished")
    hold_unfinished_s: float = Field(1.2, ge=0.0, le=3.0, description="after text that stops mid-sentence ('... on the')")
    max_merged_s: float = Field(15.0, ge=1.0, le=30.0, description="longer utterances are never held for merging")
    hold_across_playback: bool = Field(True, description="an utterance open when the car starts speaking is held "
                                       "across the playback and continues after it (not cut by the self-hearing gate)")
    stray_max_words: int = Field(2, ge=0, le=6, description="words within the hold after a command acted on at once, "
                                 "no command and no question word, of at most this many are a stray piece of it, not "
                                 "a second action ('Stop ... talking' heard as 'Stop.' + 'Cocky.'); 0: off")


class TtsSettings(StrictModel):
    """The speaking voice (vehicle_assist.speech.tts); the engines' own options are in configs/models.yaml."""

    engine: Literal["piper", "pyttsx3"] = Field(
        "piper", description="piper (natural neural voice; falls back to pyttsx3 when Piper or its voice is missing) or pyttsx3 (espeak-ng)")
    first_chunk_words: int = Field(6, ge=0, le=40, description="when nothing is playing, a longer sentence's first "
                                   "phrase (up to this many words) is rendered and played on its own (0: never cut)")
    cache_mb: float = Field(256.0, ge=0, le=4096, description="rendered sentences kept on disk ($VA_CACHE/tts, FLAC), "
                            "the answer openings `vehicle-assist index` pre-renders (~130 MB, at most 3/4) included; 0: no cache")
    nice: int = Field(0, ge=0, le=19, description="answers, replies and advisories render on a thread of this much lower "
                      "CPU priority (Linux), so perception keeps its frames while a neural voice renders; alerts are "
                      "pre-rendered and never wait for it. 0: the same priority as perception")


class SpeechSettings(StrictModel):
    """Microphone, activation, VAD, ASR (vehicle_assist.speech)."""

    sample_rate: int = 16000
    block_ms: int = Field(100, ge=10, le=1000, description="audio block size from the microphone or a file")
    mic_device: str | int | None = Field(None, description="sounddevice input device (None = system default)")
    mute_default_minutes: int = Field(10, ge=1, le=240, description="'mute alerts' without a number mutes this long")
    whole_file_max_s: float = Field(600.0, gt=0, le=7200, description="the longest file a whole-file mode "
                                    "(listen --whole) reads into memory; longer input is refused (other modes stream any length)")
    activation: ActivationSettings = ActivationSettings()
    vad: VadSettings = VadSettings()
    asr: AsrSettings = AsrSettings()
    endpoint: EndpointSettings = EndpointSettings()
    tts: TtsSettings = TtsSettings()


def remote_url_problem(url: str) -> str | None:
    """Why ``url`` may not carry the driver's questions, or None: it must be https, or http to a
    loopback address (127.0.0.0/8, ::1, localhost), where nothing crosses a network."""
    import ipaddress
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as err:
        return f"not a URL ({err})"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return None
        return f"http:// is allowed only to a loopback address (127.0.0.1, ::1, localhost); use https:// for {host}"
    return "must be an https:// URL (or http:// to a loopback address such as 127.0.0.1)"


class RemoteSettings(StrictModel):
    """An optional OpenAI-compatible endpoint for complex questions; off unless the owner opts in.
    Only the question text and the retrieved passages are sent, and only over https (or to this machine)."""

    enabled: bool = False
    url: str = ""
    """Base URL of the endpoint: ``https://...``, or ``http://`` to a loopback address such as
    ``http://127.0.0.1:8080/v1`` (``/chat/completions`` is appended). Anything else is a config error."""
    model: str = ""
    api_key_env: str = "VA_REMOTE_API_KEY"
    """Name of the environment variable holding the API key (the key itself never sits in a config)."""
    timeout_s: float = Field(2.5, gt=0, le=30)
    min_words: int = Field(14, ge=1)
    """A question this long (or with 'why', 'explain', 'compare', 'difference') counts as complex."""

    @field_validator("url")
    @classmethod
    def _https_or_loopback(cls, url: str) -> str:
        problem = remote_url_problem(url) if url else None
        if problem:
            raise ValueError(problem)
        return url


class WorkloadSettings(StrictModel):
    """When a non-urgent advisory must wait (driver busy) and when it is dropped."""

    hold_level: str = "warning"
    """A hazard at this level or above holds advisories back."""
    high_speed_mps: float = Field(22.0, gt=0)
    """Above this speed (22 m/s ~ 50 mph) close traffic makes the situation demanding."""
    close_distance_m: float = Field(30.0, gt=0)
    demanding_road_types: tuple[str, ...] = ("junction", "roundabout")
    ttl_s: float = Field(10.0, gt=0)
    """An advisory not spoken within this many seconds is dropped."""


class AdvisorySettings(StrictModel):
    """Routing, SLM, validation, optional remote LLM (vehicle_assist.advisory)."""

    route: str = Field("extractive", pattern="^(extractive|slm)$")
    """How rule questions are answered locally: ``extractive`` (key sentence) or ``slm`` (validated)."""
    max_answer_words: int = Field(45, ge=5, le=80)
    """Spoken answers are shortened to this many words (tuned on dev: 32 -> 45 words lifts fact coverage)."""
    extractive_sentences: int = Field(2, ge=1, le=3)
    """Sentences in an extractive answer (the best, then the runner-up if both fit ``max_answer_words``
    + 8; with 3, then one of the next best-ranked ones when it still fits: configs/default.yaml, dev)."""
    rank_query: str = Field("normalised", pattern="^(raw|semantic|normalised)$")
    """The text rule sentences are ranked against: the driver's words (``raw``), or the knowledge
    lane's normalised query (fillers out, the Code's words after everyday ones: "blues on" ->
    emergency vehicle flashing blue lights) for the similarity (``semantic``) or for the similarity
    and the word match (``normalised``, dev). Cues and refusals read the driver's own words."""
    redundancy: float = Field(1.0, ge=0, le=5)
    """The runner-up is ranked by its score less this share of the best's score times its word overlap
    (Jaccard) with the best sentence (0 = off): a second sentence should add, not repeat (dev)."""
    second_tries: int = Field(3, ge=1, le=10)
    """How many runner-up candidates are tried, best first, for one that fits beside the best sentence
    in ``max_answer_words`` + 8 (1 = only the first: when it is too long the answer is one sentence)."""
    complete_window: int = Field(8, ge=0, le=20)
    """The runner-up may come from any of the top 3 rules when it answers a question cue the best
    sentence lacks (advisory/cues.yaml: a distance, MUST / MUST NOT, an action...): the first such
    among the ``complete_window`` best-ranked sentences (0 = off: the runner-up from the best's rule; dev)."""
    rerank: str = Field("retriever", pattern="^(retriever|model)$")
    """``retriever``: the retriever's order; ``model`` (configs/default.yaml: held-out dev rule ranking and refusals
    up, answers flat, docs/advisory.md seventh round): a question's top ``rerank_pool`` rules are re-ordered by the learned re-ranker
    (advisory/rerank.yaml, fitted on dev; needs the sentence similarity and a model fitted for the
    index's embedder, else the retriever's order stays)."""
    rerank_pool: int = Field(10, ge=2, le=20)
    """Rules retrieved for the re-ranker to re-order (the lane then keeps its usual ``k``)."""
    rerank_model: str = ""
    """Path of the re-ranker's table ('' = the packaged advisory/rerank.yaml; cross-validation sets a fold's)."""
    whole_rules: bool = True
    facts: str = Field("with_sentence", pattern="^(off|alone|with_sentence)$")
    """Number questions answered from the Code's structured facts (advisory/facts.py): ``alone`` says
    the fact, ``with_sentence`` adds the best rule sentence when it fits, ``off`` keeps the sentence answer."""
    facts_min_score: float = Field(1.5, ge=0)
    """Answer from the whole rule of each retrieved passage (not only the chunk that matched)."""
    semantic_weight: float = Field(0.85, ge=0, le=1)
    """Weight of embedding similarity against word match when ranking sentences (0 = words only)."""
    cue_weight: float = Field(0.1, ge=0, le=1)
    """Bonus for a sentence of the kind the question asks for (advisory/cues.yaml: "how far" -> a distance)."""
    min_support: float = Field(1.0, ge=0)
    """Below this relevance of the best sentence the question is refused as not covered by the rules."""
    weak_support: float = Field(2.0, ge=0)
    weak_similarity: float = Field(0.4, ge=0, le=1)
    """A question whose best rule sentence is below both ``weak_support`` (word match) and this
    (embedding cosine) is refused even when retrieval judged it answerable (tuned on dev)."""
    rescue_similarity: float = Field(0.42, ge=0, le=1)
    """A question the retriever found only weakly similar is still answered when its best rule sentence
    is at least this similar (embedding cosine; tuned on dev). Out-of-scope questions are never rescued."""
    refusal_text: str = "Sorry, the Highway Code does not cover that, so I can't answer it."
    prompt_max_tokens: int = Field(150, ge=64, le=2048)
    """The whole prompt (system + user): prompt evaluation dominates the SLM's time to first audio."""
    prompt_passages: int = Field(2, ge=1, le=5)
    prompt_sentences: int = Field(2, ge=1, le=10)
    """Sentences kept per passage in the prompt (the most relevant ones, in their order)."""
    slm_max_tokens: int = Field(72, ge=8, le=512)
    slm_output: str = Field("plain", pattern="^(plain|json)$")
    """``plain``: the SLM writes the answer text and its citations are picked among the retrieved ids
    afterwards (fast); ``json``: output constrained by a JSON schema citing retrieved ids (slower)."""
    retrieve_timeout_s: float = Field(2.0, gt=0)
    generate_timeout_s: float = Field(6.0, gt=0)
    speak_timeout_s: float = Field(20.0, gt=0)
    run_timeout_s: float = Field(30.0, gt=0)
    remote: RemoteSettings = RemoteSettings()
    workload: WorkloadSettings = WorkloadSettings()


class ThreadSettings(StrictModel):
    """CPU threads per model, chosen together so the lanes do not starve each other (docs/runtime.md).

    The one place thread counts are set: the runtime and the standalone commands (``detect``,
    ``ask``) read ``runtime.threads``.
    """

    detector: int = Field(1, ge=1, le=64)
    """YOLO (onnxruntime/torch intra-op threads)."""
    asr: int = Field(2, ge=1, le=64)
    """Whisper (CTranslate2 cpu_threads) in the runtime: a question is short and the driver waits for it."""
    slm: int = Field(1, ge=1, le=64)
    """llama.cpp n_threads while generating."""
    embedder: int = Field(1, ge=1, le=64)
    """The query encoder (ONNX Runtime or torch threads; 1 is fastest for one short query)."""


class WatchdogSettings(StrictModel):
    """Restart of crashed stages (vehicle_assist.watchdog)."""

    initial_backoff_s: float = Field(0.5, gt=0)
    backoff_factor: float = Field(2.0, ge=1)
    max_backoff_s: float = Field(10.0, gt=0)
    reset_after_s: float = Field(30.0, gt=0)
    """A stage that ran this long before crashing restarts at the first delay again."""
    max_restarts: int | None = Field(5, ge=0)
    """Crashes in a row before a stage is given up (null: never)."""


class ProactiveSettings(StrictModel):
    """Advisories the runtime offers unasked when a hazard persists (vehicle_assist.advisory.proactive)."""

    enabled: bool = True
    kinds: dict[str, Literal["info", "caution", "warning"]] = {"cyclist-ahead": "info", "pedestrian-ahead": "caution"}
    """Hazard kinds that may trigger one, each with the least level that counts."""
    persist_s: float = Field(3.0, ge=0)
    """The same track must be there this long."""
    gap_s: float = Field(0.5, ge=0)
    """A track missing from the hazards for up to this long still counts as there (alternate-frame passes)."""
    cooldown_s: float = Field(120.0, ge=0)
    """At most one proactive advisory per kind in this many seconds."""
    in_corridor_only: bool = True
    """Only hazards in the ego path count."""


class RuntimeSettings(StrictModel):
    """Event loop, threads, trip log (vehicle_assist.runtime)."""

    trip_log_dir: str = "runs/trips"
    """Where trip logs are written (relative to VA_HOME; git-ignored)."""
    fsync: bool = False
    """fsync after every record: survives power loss, costs a disk flush per record. Without it a
    crash or kill -9 of the process still loses nothing already logged."""
    queue_bound: int = Field(64, ge=1, le=100_000)
    """Length bound of every FIFO topic subscription (the oldest is dropped, and counted, when full)."""
    stale_check_s: float = Field(0.1, gt=0, le=10)
    """How often topic staleness is checked (clock time)."""
    vehicle: str = "none"
    """Vehicle source: none | a telemetry file | a comma2k19 folder | obd[:PORT] | gpsd[:HOST[:PORT]] | A+B."""
    vehicle_rate_hz: float = Field(10.0, gt=0, le=100)
    """How often vehicle state is published."""
    shutdown_timeout_s: float = Field(5.0, gt=0)
    """On SIGINT/SIGTERM, how long stages get to finish before they are cancelled."""
    malloc_arenas: int = Field(2, ge=0, le=64)
    """Cap on glibc malloc arenas, set when the models load (0: glibc's default of 8 per core)."""
    threads: ThreadSettings = ThreadSettings()
    watchdog: WatchdogSettings = WatchdogSettings()
    proactive: ProactiveSettings = ProactiveSettings()


class RouteSettings(StrictModel):
    """Route context from an offline map (vehicle_assist.route; docs/route.md)."""

    map: str | None = None
    """OSM extract (.osm / .osm.pbf; relative to VA_HOME), or null: no route context."""
    vehicle_type: str = "car"
    """Row of Rule 124's national-limit table in configs/route.yaml (car, car_towing, bus, goods...)."""
    nation: Literal["england", "scotland", "wales"] = "england"
    """Built-up national limit: 30 mph, or 20 mph in Wales."""
    gps_sigma_m: float = Field(10.0, gt=0)
    """GNSS position noise (1 sigma) the matcher assumes."""
    radius_m: float = Field(50.0, gt=0)
    """No road this close to a fix: no match, no claim."""
    beta_m: float = Field(8.0, gt=0)
    step_m: float = Field(12.0, gt=0)
    """A matching step every this many metres travelled (between steps the match is carried forward)."""
    max_step_s: float = Field(3.0, gt=0)
    max_gap_s: float = Field(30.0, gt=0)
    turn_cost: float = Field(0.0, ge=0)
    """Matcher's turn prior: log-probability cost per 90 deg turned at a junction (going straight on is
    free); scaled by the speed through it (``turn_speed_mps``)."""
    turn_speed_mps: float = Field(0.0, ge=0)
    """The turn cost scales with (lowest speed since the last step / this)^2, within 0.25x-4x; 0: not."""
    minor_cost: float = Field(0.0, ge=0)
    """Matcher's cost of a route that turns off a road onto a ``minor_classes`` way (driveways, car-park aisles)."""
    minor_classes: list[str] = ["service"]
    segs_per_way: int = Field(1, ge=1)
    """Matcher candidates: the nearest this many segments of each way near a fix (2: at a bend both
    segments, so the one whose bearing agrees with the course is a candidate)."""
    turn_fix_sigma_m: float = Field(0.0, ge=0)
    """With a GNSS course over ground: the moment the course swings through a turn places the car at
    the turn's node; the place on the road after it is the distance travelled since, fused with this
    1-sigma (m). 0: off. Without a course (fix + speed only) nothing changes."""
    hold_speed_mps: float = Field(0.0, ge=0)
    """Zero-velocity hold: while the CAN/OBD speed is known and below this (m/s) the matcher takes no
    step and fuses no fix (the car cannot leave its place); it goes on from the held match when the car
    pulls away. 0: off. Unknown speed: nothing changes."""
    stand_rescore_s: float = Field(0.0, ge=0)
    """While held: every this many seconds of standing, the mean of the standing fixes since the last
    time re-scores the held match's states (no new candidates, 0 m travelled), so a match that was
    wrong when the car stopped need not be held through the wait. 0: off."""
    gyro_sigma_deg: float = Field(20.0, ge=0)
    """With a yaw rate (a gyro or the CAN yaw-rate signal) and no GNSS course: the heading integrated
    from it, anchored to the matched road, counts as a course with this 1-sigma (deg), at any speed
    from 1 m/s and through GNSS gaps (:mod:`vehicle_assist.route.heading`). 0: the yaw rate is ignored.
    Without a yaw rate nothing changes."""
    match_lag_s: float = Field(1.0, ge=0, le=10)
    """Fixed lag of ``route match`` and the bench when ``match_whole_track`` is off (or ``route match
    --lag``): a fix's road and limit are decided with the fixes of the next this many seconds (its
    record comes out that much plus up to one matching step later); 0: each record at once. The
    runtime's route lane answers at once (filtered) either way."""
    match_whole_track: bool = False
    """``route match`` and the bench (:meth:`RouteTracker.push`): each fix decided with the whole
    track: the best path through all of its fixes, and the place along that path smoothed with the
    fixes before and after it (:mod:`vehicle_assist.route.smooth`); the records come out once the
    track has been read. False: with the next ``match_lag_s`` of fixes, streamed. The runtime's route
    lane answers at once either way."""
    gnss_coloured: float = Field(0.8, ge=0, le=1)
    """The smoothing's GNSS error model: this share of the variance (``gps_sigma_m`` squared) is
    coloured, a first-order Gauss-Markov process..."""
    gnss_tau_s: float = Field(5.0, ge=0)
    """...with this time constant (s); the rest is white."""
    lookahead_s: float = Field(10.0, gt=0)
    """Features ahead are looked for within this many seconds of travel..."""
    lookahead_min_m: float = Field(100.0, ge=0)
    """...but at least this far..."""
    lookahead_max_m: float = Field(600.0, gt=0)
    """...and at most this far."""
    log_position: Literal["exact", "coarse", "off"] = "exact"
    """Positions in the trip log and the report: exact, coarse (rounded to 0.01 deg, ~1 km), or off."""
    advice_ttl_s: float = Field(3.0, gt=0)
    """A route advisory held back by the workload hold is dropped after this long (its distance goes stale)."""


class AppConfig(StrictModel):
    """``configs/default.yaml`` (onboard) and ``configs/replay.yaml``."""

    knowledge: KnowledgeSettings = KnowledgeSettings()
    perception: PerceptionSettings = PerceptionSettings()
    speech: SpeechSettings = SpeechSettings()
    advisory: AdvisorySettings = AdvisorySettings()
    runtime: RuntimeSettings = RuntimeSettings()
    route: RouteSettings = RouteSettings()


def load_app(path: Path | str | None = None, only: tuple[str, ...] = ()) -> AppConfig:
    """Load the onboard config (``VA_CONFIG``, else configs/default.yaml) with ``VA_X__Y`` overrides.

    ``only`` (e.g. ``("perception", "runtime.threads")``) validates just those sections or
    sub-tables, the rest left at their defaults: a command that runs one concern is not stopped by
    a half-edited section of another."""
    path = Path(path or os.environ.get("VA_CONFIG") or config_path("default.yaml"))
    if not only:
        return load(path, AppConfig, env_overrides())
    data = _merge(read_yaml(path) or {}, env_overrides())
    picked: dict[str, Any] = {}
    for dotted in only:
        keys = dotted.split(".")
        node, out = data, picked
        for key in keys[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
            out = out.setdefault(key, {})
        if isinstance(node, dict) and keys[-1] in node:
            out[keys[-1]] = node[keys[-1]]
    return validate(picked, AppConfig, path, env=True)
