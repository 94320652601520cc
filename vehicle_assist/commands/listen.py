"""``vehicle-assist listen``: transcribe a file (or the microphone) and show transcript, confidence,
intent and timings per utterance."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from vehicle_assist.commands._out import console, emit, emit_line, fail, note, progress


def _record(heard, utt, vad_end_ms: float | None = None) -> dict:
    t = heard.transcript
    rec = {
        "start_s": round(utt.t_start_ns / 1e9, 3), "end_s": round(utt.t_end_ns / 1e9, 3),
        "transcript": t.text, "confidence": round(t.confidence, 3), "backend": t.backend,
        "accepted": heard.decision.accept, "activation": heard.decision.reason,
        "intent": heard.intent.name if heard.intent else None,
        "slots": dict(heard.intent.slots) if heard.intent else {},
        "ask_back": heard.ask_back,
        "timings": {k: round(v, 1) for k, v in heard.timings.items()},
    }
    if vad_end_ms is not None:
        rec["timings"]["vad_ms"] = round(vad_end_ms, 1)
    return rec


def _print(rec: dict) -> None:
    what = rec["intent"] or ("ask back: " + rec["ask_back"] if rec["ask_back"] else rec["activation"])
    console.print(f"\\[{rec['start_s']:6.2f}-{rec['end_s']:6.2f}s] [bold]{escape(rec['transcript'] or '(nothing)')}[/bold]  "
                  f"conf {rec['confidence']:.2f}  -> {what}  (asr {rec['timings']['asr_ms']:.0f} ms)")


def register(app: typer.Typer) -> None:
    @app.command(short_help="Transcribe speech and classify what the driver asked.")
    def listen(
        audio_file: Optional[Path] = typer.Argument(None, metavar="AUDIO_FILE", help="Audio file (WAV/FLAC/MP3, or a video's audio track). Omit to use the microphone."),
        backend: Optional[str] = typer.Option(None, "--backend", metavar="NAME", help="ASR backend: faster-whisper | openai-whisper (default: speech.asr.backend in the config)."),
        wake: bool = typer.Option(False, "--wake", help="Hands-free mode: act only on utterances that start with the wake phrase."),
        whole: bool = typer.Option(False, "--whole", help="Transcribe the whole file as one utterance (no VAD)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document (file) or JSON Lines (microphone)."),
    ) -> None:
        """Transcribe speech and classify what the driver asked (command or question).

        Each utterance cut by the VAD is transcribed; low-confidence transcripts are marked for an
        ask-back ("Sorry, say that again?") instead of an intent.
        """
        from vehicle_assist import clock, config
        from vehicle_assist.speech import activation, asr, audio, lane, vad
        from vehicle_assist.messages import Utterance

        settings = config.load_app().speech
        name = backend or settings.asr.backend
        if name not in asr.BACKENDS:
            fail(f"unknown backend {name!r}; choose one of {', '.join(asr.BACKENDS)}", 2, code="usage")
        mode = activation.WAKE_PHRASE if wake else settings.activation.mode
        act = settings.activation
        gate = activation.Gate(mode, act.wake_phrase, act.wake_min_similarity,
                               heard_as=tuple(act.wake_heard_as.get(act.wake_phrase.lower(), ())))
        if mode == activation.PUSH_TO_TALK:
            gate.pressed = True  # a file (or this command's mic session) is one long press
        options = vad.VadOptions.from_settings(settings.vad)
        kw = dict(min_confidence=settings.asr.min_confidence, ask_back_text=settings.asr.ask_back,
                  default_minutes=settings.mute_default_minutes)

        mic = None
        if audio_file is None:
            mic = audio.MicSource(clock.WallClock().now_ns, settings.mic_device, settings.block_ms)
            try:
                mic.check()
            except audio.AudioError as err:
                fail(err, 3)
        t0 = clock.perf_ns()
        try:
            recogniser = asr.load_backend(name, asr.AsrOptions.from_settings(settings.asr))
        except asr.ASRError as err:
            fail(err, 2)
        load_ms = (clock.perf_ns() - t0) / 1e6

        if mic is not None:
            _listen_mic(mic, recogniser, gate, options, kw, as_json)
            return
        t0 = clock.perf_ns()
        try:
            pcm, sr = audio.load_audio(audio_file)
        except audio.AudioError as err:
            fail(err, 2)
        t1 = clock.perf_ns()
        utts = [Utterance(0, int(len(pcm) / sr * 1e9), pcm, sr)] if whole else vad.segment(pcm, sr, options)
        vad_ms = (clock.perf_ns() - t1) / 1e6
        records = []
        with progress("transcribing", len(utts), enabled=not as_json) as advance:
            for utt in utts:
                try:
                    heard = lane.hear(utt, recogniser, gate, **kw)
                except asr.ASRError as err:
                    fail(err, 1)
                records.append(_record(heard, utt))
                advance()
        doc = {"file": str(audio_file), "backend": name, "activation": mode, "audio_s": round(len(pcm) / sr, 3),
               "utterances": records,
               "timings": {"model_load_ms": round(load_ms, 1), "decode_ms": round((t1 - t0) / 1e6, 1),
                           "vad_ms": round(vad_ms, 1)}}

        def human(d: dict) -> None:
            console.print(f"{escape(d['file'])}: {d['audio_s']:.1f} s, {len(d['utterances'])} utterance(s), backend {d['backend']}")
            for rec in d["utterances"]:
                _print(rec)
            if not d["utterances"]:
                console.print("no speech found (try --whole to transcribe the file as one utterance)")

        emit(doc, as_json, human)


def _listen_mic(mic, recogniser, gate, options, kw, as_json: bool) -> None:
    """Stream the microphone through the VAD until Ctrl-C; one record per utterance."""
    from vehicle_assist.speech import lane, vad

    seg = vad.VadSegmenter(options)
    note("listening on the microphone (Ctrl-C to stop)...")
    elapsed = 0.0
    try:
        for chunk in mic:
            for ev in seg.process(chunk.pcm, elapsed):
                if ev.utterance is not None:
                    rec = _record(lane.hear(ev.utterance, recogniser, gate, **kw), ev.utterance)
                    emit_line(rec) if as_json else _print(rec)
            elapsed += chunk.duration_s
    except KeyboardInterrupt:
        pass
