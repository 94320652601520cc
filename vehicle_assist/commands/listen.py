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
        whole: bool = typer.Option(False, "--whole", help="Transcribe the whole file as one utterance (no VAD); files longer than speech.whole_file_max_s (default 600 s) are refused."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON document (file) or JSON Lines (microphone)."),
    ) -> None:
        """Transcribe speech and classify what the driver asked (command or question).

        Each utterance cut by the VAD is transcribed; low-confidence transcripts are marked for an
        ask-back ("Sorry, say that again?") instead of an intent. A file is read and cut as a stream,
        so any length takes the same memory.
        """
        from vehicle_assist import clock, config
        from vehicle_assist.speech import activation, asr, audio, vad
        from vehicle_assist.speech.rescore import RescoreOptions

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
                  default_minutes=settings.mute_default_minutes,
                  rescore_opts=RescoreOptions.from_settings(settings.asr.rescore))

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
        try:
            if whole:
                doc = _whole(audio_file, recogniser, gate, kw, settings.whole_file_max_s, as_json)
            else:
                doc = _stream(audio_file, recogniser, gate, options, kw, as_json)
        except audio.AudioError as err:
            hint = "; without --whole, listen streams a file of any length" if err.code == "audio-too-long" else ""
            fail(f"{err.message}{hint}", 2, code=err.code)
        except asr.ASRError as err:
            fail(err, 1)
        doc = {"file": str(audio_file), "backend": name, "activation": mode, **doc}
        doc["timings"] = {"model_load_ms": round(load_ms, 1), **doc["timings"]}

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


def _whole(audio_file: Path, recogniser, gate, kw, max_s: float, as_json: bool) -> dict:
    """The whole file as one utterance (refused over ``max_s``: it is held in memory)."""
    from vehicle_assist import clock
    from vehicle_assist.messages import Utterance
    from vehicle_assist.speech import audio, lane

    t0 = clock.perf_ns()
    pcm, sr = audio.load_audio(audio_file, max_s=max_s, limit_name="speech.whole_file_max_s")
    t1 = clock.perf_ns()
    utt = Utterance(0, int(len(pcm) / sr * 1e9), pcm, sr)
    with progress("transcribing", 1, enabled=not as_json) as advance:
        records = [_record(lane.hear(utt, recogniser, gate, **kw), utt)]
        advance()
    return {"audio_s": round(len(pcm) / sr, 3), "utterances": records,
            "timings": {"decode_ms": round((t1 - t0) / 1e6, 1), "vad_ms": 0.0}}


def _stream(audio_file: Path, recogniser, gate, options, kw, as_json: bool) -> dict:
    """Read the file block by block through the VAD, transcribing each utterance as it closes."""
    from vehicle_assist import clock
    from vehicle_assist.speech import audio, lane, vad

    sr = audio.SAMPLE_RATE
    seg = vad.VadSegmenter(options, sr)
    blocks = audio.stream_audio(audio_file, sr)
    records: list[dict] = []
    n, decode_ns, vad_ns = 0, 0, 0
    total = audio.duration_s(audio_file)
    with progress("listening (s of audio)", int(total) if total else None, enabled=not as_json) as advance:
        while True:
            t0 = clock.perf_ns()
            pcm = next(blocks, None)
            t1 = clock.perf_ns()
            decode_ns += t1 - t0
            events = seg.process(pcm, n / sr) if pcm is not None else seg.flush(n / sr)
            vad_ns += clock.perf_ns() - t1
            for ev in events:
                if ev.utterance is not None:
                    records.append(_record(lane.hear(ev.utterance, recogniser, gate, **kw), ev.utterance))
            if pcm is None:
                break
            before = n // sr
            n += len(pcm)
            advance(n // sr - before)
    return {"audio_s": round(n / sr, 3), "utterances": records,
            "timings": {"decode_ms": round(decode_ns / 1e6, 1), "vad_ms": round(vad_ns / 1e6, 1)}}
