"""Speech recognition: two Whisper backends behind one small interface.

``faster-whisper`` (default) runs the CTranslate2 int8 model of the ``asr`` role;
``openai-whisper`` runs the same weights in PyTorch, converted offline (:mod:`.convert`). Both turn
Whisper's segments into one :class:`~vehicle_assist.messages.Transcript` with a confidence in
[0, 1] computed from the segments' average log-probability and no-speech probability. A transcript
below ``min_confidence`` is asked back instead of acted on.

No words from noise: Whisper writes text on engine noise and silence ("Thank you.", "You"). Each
segment passes :func:`noise_reason` (pure; thresholds in :class:`NoiseGate`): a segment Whisper
itself thinks is no speech, one it is very unsure of, or a repetitive one (compression ratio) is
dropped; a transcript left with no words carries ``rejected`` (the reason) and empty text, and the
lane neither acts on it nor asks back.

Wake phrase by sound (hands-free): :meth:`FasterWhisperASR.score_prefix` scores the last utterance against
the wake phrase with Whisper itself. It decodes the utterance again with the phrase forced as the
decoder's prefix (the words after it are the driver's request) and compares the log-probability
Whisper gives that reading with the one it gives its own transcript, both computed by one forced
pass over the same encoder output (:class:`PrefixScore`); :mod:`.activation` decides from the
difference.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from vehicle_assist import clock
from vehicle_assist.errors import CodedError
from vehicle_assist.messages import Transcript, Utterance

BACKENDS = ("faster-whisper", "openai-whisper")
MODEL_ROLES = {"tiny.en": "asr", "base": "asr_base"}
"""Whisper model name (``speech.asr.model``) -> its role in configs/models.yaml."""


class ASRError(CodedError):
    """Recognition failed. ``code``: asr-backend (unknown backend), asr-model (model missing),
    asr-failed (the decoder raised)."""

    bracketed = True


@dataclass(frozen=True)
class NoiseGate:
    """When a Whisper segment is taken for noise, not words (config: ``speech.asr.noise_gate``)."""

    no_speech_prob: float = 0.5  # no-speech probability above this ...
    no_speech_logprob: float = -0.7  # ... together with a mean token log-prob below this
    min_logprob: float = -1.2  # any segment this unsure (mean token log-prob) is dropped
    max_compression_ratio: float = 2.4  # repetitive text ("you you you ...") is dropped
    enabled: bool = True

    @classmethod
    def from_settings(cls, settings) -> "NoiseGate":
        """Build from :class:`~vehicle_assist.config.NoiseGateSettings`."""
        return cls(**settings.model_dump())


@dataclass(frozen=True)
class AsrOptions:
    """Decoding options shared by both backends."""

    beam_size: int = 1  # 1 = greedy; the config's default is 5 (lower WER on dev, docs/speech.md)
    initial_prompt: str | None = None  # decoder prompt, e.g. driving vocabulary
    language: str = "en"
    pad_s: float = 0.0  # digital silence added before and after the utterance (lower WER in road noise)
    encoder_tail_s: float = 0.0  # the encoder sees the padded utterance + this much silence (0: its whole 30 s window)
    min_confidence: float = 0.0  # a cut window's transcript less sure than this is decoded on the whole window
    model: str = "tiny.en"  # which Whisper (MODEL_ROLES): tiny.en | base
    noise_gate: NoiseGate = NoiseGate(enabled=False)  # the config turns it on (speech.asr.noise_gate)

    @classmethod
    def from_settings(cls, settings) -> "AsrOptions":
        """Build from :class:`~vehicle_assist.config.AsrSettings`."""
        return cls(beam_size=settings.beam_size, initial_prompt=settings.initial_prompt, pad_s=settings.pad_s,
                   encoder_tail_s=settings.encoder_tail_s,
                   min_confidence=settings.min_confidence, model=settings.model, noise_gate=NoiseGate.from_settings(settings.noise_gate))


@dataclass(frozen=True)
class PrefixScore:
    """Whisper's log-probabilities of two readings of one utterance (summed over text tokens, each
    token scored given the decoder prompt and the tokens before it): ``logprob`` of ``prefix`` + the
    words Whisper decodes after it (``text``), ``free_logprob`` of the transcript decoded without it.
    ``prefix_logprob``: mean log-probability of the prefix's own tokens."""

    prefix: str
    text: str  # the words decoded after the prefix (what the driver asked), without the prefix
    logprob: float
    free_logprob: float
    prefix_logprob: float
    ms: float = 0.0

    @property
    def margin(self) -> float:
        """log P(prefix reading) - log P(free transcript): 0 = as likely, -5 = e^5 times less likely."""
        return self.logprob - self.free_logprob


def pad(pcm: np.ndarray, pad_s: float, sample_rate: int = 16000) -> np.ndarray:
    """The utterance with ``pad_s`` seconds of silence before and after (unchanged for 0)."""
    if pad_s <= 0:
        return pcm
    zeros = np.zeros(round(pad_s * sample_rate), np.float32)
    return np.concatenate([zeros, pcm, zeros])


def encoder_frames(n_samples: int, tail_s: float = 0.0, hop: int = 160, max_frames: int = 3000,
                   frame_rate: int = 100) -> int:
    """Pure: how many mel frames of its 30 s window (``max_frames``) Whisper's encoder is run on for an input of
    ``n_samples``: the input's own and ``tail_s`` seconds of the silence after it (even, as the encoder's second
    convolution halves them), at most the window. ``tail_s`` 0: the whole window, as Whisper was trained. The
    encoder's time is fixed by the frames it sees, so a 3 s question need not pay for 30 s; too little silence
    after the words and Whisper repeats them (:func:`repeated`)."""
    if tail_s <= 0:
        return max_frames
    frames = -(-n_samples // hop) + int(round(tail_s * frame_rate))
    return max(2, min(max_frames, frames + frames % 2))


def snr_estimate_db(pcm: np.ndarray, sample_rate: int = 16000, frame_ms: int = 20) -> float:
    """Pure: a rough speech-to-noise ratio of an utterance as the VAD cut it (its pre-roll and trailing silence are
    road noise): the 90th percentile of its 20 ms frames' speech-band energy over the 10th, in dB."""
    from vehicle_assist.speech.vad import band_energy_db

    n = sample_rate * frame_ms // 1000
    frames = np.asarray(pcm, np.float32)[: len(pcm) // n * n].reshape(-1, n)
    if len(frames) < 2:
        return 0.0
    e = band_energy_db(frames, sample_rate)
    return float(np.percentile(e, 90) - np.percentile(e, 10))


def repeated(text: str) -> bool:
    """Pure: is ``text`` the same words said two or more times over ("Louder, louder.", "Unmute the alerts,
    unmute the alerts.")? Whisper's failure on a cut encoder window (and a driver's rare repeat, which
    then costs one more decode)."""
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()
    n = len(words)
    return any(n % k == 0 and n // k >= 2 and words == words[:k] * (n // k) for k in range(1, n // 2 + 1))


@dataclass(frozen=True)
class SegmentScore:
    """What confidence is computed from, per Whisper segment (vendor segments stop here)."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    weight: float  # the segment's length (characters), so long segments count more
    compression_ratio: float = 1.0  # gzip ratio of the text: high = repetitive (a hallucination loop)


def noise_reason(seg: SegmentScore, gate: NoiseGate) -> str | None:
    """Pure: why this segment is noise rather than words ("no-speech", "unsure", "repetitive"), or None."""
    if not gate.enabled or not seg.text.strip():
        return None
    if seg.compression_ratio > gate.max_compression_ratio:
        return "repetitive"
    if seg.no_speech_prob > gate.no_speech_prob and seg.avg_logprob < gate.no_speech_logprob:
        return "no-speech"
    if seg.avg_logprob < gate.min_logprob:
        return "unsure"
    return None


def gate_segments(segments: list[SegmentScore], gate: NoiseGate) -> tuple[list[SegmentScore], str]:
    """The segments that are words, and (when none with text is left) the reason the first was dropped."""
    kept, reasons = [], []
    for s in segments:
        reason = noise_reason(s, gate)
        (reasons.append(reason) if reason else kept.append(s))
    has_words = any(s.text.strip() for s in kept)
    return kept, ("" if has_words or not reasons else reasons[0])


def confidence(segments: list[SegmentScore]) -> float:
    """Transcript confidence in [0, 1]: exp(mean log-prob per token) x (1 - no-speech probability)."""
    scored = [s for s in segments if s.text.strip()]
    if not scored:
        return 0.0
    total = sum(max(s.weight, 1.0) for s in scored)
    logprob = sum(s.avg_logprob * max(s.weight, 1.0) for s in scored) / total
    no_speech = sum(s.no_speech_prob * max(s.weight, 1.0) for s in scored) / total
    return float(min(1.0, max(0.0, math.exp(logprob) * (1.0 - no_speech))))


def keep_cut_reading(scores: list[SegmentScore], gate: NoiseGate, min_confidence: float) -> bool:
    """Pure: is the reading from a cut encoder window (:func:`encoder_frames`) kept? Words left after the noise
    gate, not a repeat (Whisper's failure with too little silence after the words), and as sure as the lane
    needs to act without asking back (``min_confidence``). Otherwise the whole window decodes the utterance
    again, so noise and unsure speech (in road noise, mostly) are judged as Whisper was trained."""
    kept = gate_segments(scores, gate)[0]
    text = " ".join(s.text for s in kept if s.text.strip())
    return bool(text.strip()) and not repeated(text) and confidence(kept) >= min_confidence


def needs_ask_back(transcript: Transcript, min_confidence: float) -> bool:
    """True when the transcript is too unsure (or empty) to act on."""
    return not transcript.text.strip() or transcript.confidence < min_confidence


class ASR(Protocol):
    """A speech recogniser: one utterance in, one transcript out."""

    name: str

    def transcribe(self, utt: Utterance) -> Transcript:
        """Recognise one utterance (16 kHz mono float32)."""


def _transcript(utt: Utterance, segments: list[SegmentScore], backend: str, start_ns: int,
                gate: NoiseGate = NoiseGate(enabled=False)) -> Transcript:
    segments, rejected = gate_segments(segments, gate)
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    return Transcript(t_ns=utt.t_end_ns, text=text, confidence=confidence(segments), backend=backend,
                      audio_s=len(utt.pcm) / utt.sample_rate, asr_ms=(clock.perf_ns() - start_ns) / 1e6,
                      rejected=rejected)


def _check(utt: Utterance) -> np.ndarray:
    pcm = np.asarray(utt.pcm, dtype=np.float32).reshape(-1)
    if utt.sample_rate != 16000:
        raise ASRError("asr-failed", f"Whisper needs 16 kHz audio, got {utt.sample_rate} Hz (use audio.load_audio)")
    return np.nan_to_num(pcm)


class WhisperASR:
    """What both Whisper backends share: model loading, input checks, error wrapping, the transcript.

    A backend sets ``name``, ``_load`` (the model loader) and ``_decode`` (PCM -> segment scores).
    """

    name = "whisper"

    def __init__(self, model: Any = None, options: AsrOptions = AsrOptions(), threads: int | None = None) -> None:
        self.options = options
        self.model_name = options.model
        self.model = model if model is not None else self._load(**({"cpu_threads": threads} if threads else {}))

    def _resolved(self):
        from vehicle_assist import models

        if self.model_name not in MODEL_ROLES:
            raise ASRError("asr-model", f"unknown Whisper model {self.model_name!r}; choose one of {', '.join(MODEL_ROLES)}")
        return models.resolve(MODEL_ROLES[self.model_name])

    def _load(self, **overrides: Any) -> Any:
        """Load this backend's model through the registry (``cpu_threads`` may override models.yaml)."""
        raise NotImplementedError

    def _decode(self, pcm: np.ndarray) -> list[SegmentScore]:
        """Decode 16 kHz float32 PCM into per-segment scores (vendor segments stop here)."""
        raise NotImplementedError

    def transcribe(self, utt: Utterance) -> Transcript:
        """Recognise one utterance (silence-padded) with beam or greedy decoding, no timestamps."""
        start = clock.perf_ns()
        pcm = _check(utt)
        if len(pcm) == 0:
            return _transcript(utt, [], self.name, start)
        try:
            scores = self._decode(pad(pcm, self.options.pad_s))
        except Exception as err:  # CTranslate2 raises RuntimeError/ValueError, torch RuntimeError, on bad input
            raise ASRError("asr-failed", f"{self.name} failed: {err}") from err
        return _transcript(utt, scores, self.name, start, self.options.noise_gate)


class FasterWhisperASR(WhisperASR):
    """faster-whisper (CTranslate2, int8) over the ``asr`` role's model."""

    name = "faster-whisper"

    def _load(self, **overrides: Any) -> Any:
        from vehicle_assist import models

        return models.load_asr(self._resolved(), **overrides)

    def _decode(self, pcm: np.ndarray) -> list[SegmentScore]:
        fe = self.model.feature_extractor
        n = encoder_frames(len(pcm), self.options.encoder_tail_s, fe.hop_length, fe.nb_max_frames)
        scores = self._decode_window(pcm, n)
        self.last_window = "whole" if n >= fe.nb_max_frames else "cut"
        if n < fe.nb_max_frames and not keep_cut_reading(scores, self.options.noise_gate, self.options.min_confidence):
            scores = self._decode_window(pcm, fe.nb_max_frames)  # the whole window decides, as Whisper was trained
            self.last_window = "cut+whole"
        return scores

    def _decode_window(self, pcm: np.ndarray, n: int) -> list[SegmentScore]:
        """Decode with the encoder run on the first ``n`` mel frames of Whisper's 30 s window."""
        encoded: list = []
        encode = self.model.encode
        # kept for score_prefix; the encoder sees the first n frames of its window (all of them: n = 3000)
        self.model.encode = lambda features: encoded.append(encode(features[..., :n])) or encoded[-1]
        try:
            segments, _info = self.model.transcribe(
                pcm, language=self.options.language, beam_size=self.options.beam_size, temperature=0.0,
                condition_on_previous_text=False, without_timestamps=True, vad_filter=False,
                initial_prompt=self.options.initial_prompt)
            segments = list(segments)
        finally:
            del self.model.encode  # the instance attribute goes: the class's method again
        # one 30 s window (utterances are at most ~17 s with the padding): its encoder output and tokens
        full = n >= self.model.feature_extractor.nb_max_frames  # score_prefix's thresholds were set on the whole window
        self._last = (pcm, encoded[0] if len(encoded) == 1 and full else None, [t for s in segments for t in s.tokens])
        self._encoded = (pcm, encoded[0], n) if len(encoded) == 1 else None  # the window this reading came from (score_texts)
        return [SegmentScore(s.text, s.avg_logprob, s.no_speech_prob, len(s.text), s.compression_ratio) for s in segments]

    def _context(self, tok) -> list[int]:
        """The transcript's decoder prompt: the initial prompt's tokens and the start of transcript (faster-whisper's
        get_prompt)."""
        prompt = self.options.initial_prompt
        context = ([tok.sot_prev] + tok.encode(" " + prompt.strip())[-(self.model.max_length // 2 - 1):] if prompt else [])
        return context + list(tok.sot_sequence)

    def score_prefix(self, utt: Utterance, prefix: str, free_text: str) -> PrefixScore:
        """Score ``utt`` read as starting with ``prefix`` against its transcript ``free_text`` (see
        :class:`PrefixScore`). Decoded with the transcript's settings (beam, prompt, padding, suppressed
        tokens); right after :meth:`transcribe` of the same utterance the encoder output and the
        transcript's tokens are reused, so the cost is one prefix-forced decode and two forced passes."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        start = clock.perf_ns()
        fw = self.model
        pcm = pad(_check(utt), self.options.pad_s)
        last = getattr(self, "_last", None)
        tok = Tokenizer(fw.hf_tokenizer, fw.model.is_multilingual, task="transcribe", language=self.options.language)
        frames = len(pcm) // fw.feature_extractor.hop_length
        if last is not None and last[1] is not None and len(last[0]) == len(pcm) and np.array_equal(last[0], pcm):
            encoded, free = last[1], [t for t in last[2] if t < tok.eot]
        else:
            features = fw.feature_extractor(pcm)[:, : fw.feature_extractor.nb_max_frames]
            encoded = fw.encode(pad_or_trim(features))  # the whole window, as its thresholds were set (encoder_tail_s aside)
            free = tok.encode(" " + free_text.strip()) if free_text.strip() else []
        context = self._context(tok)
        head = tok.encode(" " + prefix.strip())
        try:
            out = fw.model.generate(encoded, [context + [tok.no_timestamps] + head], beam_size=max(1, self.options.beam_size),
                                    max_length=fw.max_length, suppress_blank=True,
                                    suppress_tokens=list(get_suppressed_tokens(tok, [-1])))
            ids = [t for t in out[0].sequences_ids[0] if t < tok.eot]
            forced = ids if ids[:len(head)] == head else head + ids
            # both readings scored in the transcript's own context (the prompt): without it, a transcript the
            # prompt's vocabulary made likely ("The carriageway is ...") scores low, and any other reading looks close
            logp = [np.log(np.maximum(np.asarray(fw.model.align(encoded, context, [seq], frames)[0].text_token_probs,
                                                     np.float64), 1e-30)) if seq else np.zeros(0)
                    for seq in (forced, free)]
        except Exception as err:  # CTranslate2 raises RuntimeError/ValueError on bad input
            raise ASRError("asr-failed", f"{self.name} prefix scoring failed: {err}") from err
        return PrefixScore(prefix, tok.decode(forced[len(head):]).strip(), float(logp[0].sum()), float(logp[1].sum()),
                           float(logp[0][:len(head)].mean()), (clock.perf_ns() - start) / 1e6)


    def score_texts(self, utt: Utterance, texts: list[str]) -> list[float]:
        """Whisper's log-probability of each text as the reading of ``utt`` (summed over its tokens, each given the
        decoder prompt and the tokens before it), by forced decoder passes over one encoder output: the window
        the last :meth:`transcribe` of the same audio used, else the utterance encoded as :meth:`transcribe`
        would first encode it. What :mod:`.rescore` compares a transcript with its command readings by."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        fw = self.model
        fe = fw.feature_extractor
        pcm = pad(_check(utt), self.options.pad_s)
        last = getattr(self, "_encoded", None)
        tok = Tokenizer(fw.hf_tokenizer, fw.model.is_multilingual, task="transcribe", language=self.options.language)
        try:
            if last is not None and len(last[0]) == len(pcm) and np.array_equal(last[0], pcm):
                encoded, n = last[1], last[2]
            else:
                n = encoder_frames(len(pcm), self.options.encoder_tail_s, fe.hop_length, fe.nb_max_frames)
                encoded = fw.encode(pad_or_trim(fe(pcm)[:, : fe.nb_max_frames])[..., :n])
            context = self._context(tok) + [tok.no_timestamps]  # as the transcript was decoded
            seqs = [tok.encode(" " + t.strip()) for t in texts]
            frames = min(len(pcm) // fe.hop_length, n)
            out = []
            for seq in seqs:
                probs = fw.model.align(encoded, context, [seq], frames)[0].text_token_probs if seq else []
                out.append(float(np.log(np.maximum(np.asarray(probs, np.float64), 1e-30)).sum()))
        except Exception as err:  # CTranslate2 raises RuntimeError/ValueError on bad input
            raise ASRError("asr-failed", f"{self.name} text scoring failed: {err}") from err
        return out


class OpenAIWhisperASR(WhisperASR):
    """openai-whisper (PyTorch) over the same weights, converted from CTranslate2 on first use."""

    name = "openai-whisper"

    def _load(self, **overrides: Any) -> Any:
        from vehicle_assist.speech.convert import load_model

        res = self._resolved()
        return load_model(res.path, int({**res.options, **overrides}.get("cpu_threads", 2)), self.model_name)

    def _decode(self, pcm: np.ndarray) -> list[SegmentScore]:
        beam = self.options.beam_size if self.options.beam_size > 1 else None
        result = self.model.transcribe(
            pcm, language=self.options.language, fp16=False, temperature=0.0, beam_size=beam,
            condition_on_previous_text=False, without_timestamps=True, verbose=None,
            initial_prompt=self.options.initial_prompt)
        return [SegmentScore(s["text"], s["avg_logprob"], s["no_speech_prob"], len(s["text"]), s["compression_ratio"])
                for s in result["segments"]]


def load_backend(name: str = "faster-whisper", options: AsrOptions = AsrOptions(), threads: int | None = None) -> ASR:
    """Load one backend by name with the Whisper model of ``options.model`` (tiny.en | base; ``threads``:
    CPU threads, else models.yaml's); a missing model becomes ASRError('asr-model') naming where it looked."""
    from vehicle_assist.models import ModelNotFound
    from vehicle_assist.speech.convert import ConvertError

    classes = {"faster-whisper": FasterWhisperASR, "openai-whisper": OpenAIWhisperASR}
    if name not in classes:
        raise ASRError("asr-backend", f"unknown ASR backend {name!r}; choose one of {', '.join(BACKENDS)}")
    try:
        return classes[name](options=options, threads=threads)
    except (ModelNotFound, ConvertError) as err:
        raise ASRError("asr-model", str(err)) from err
