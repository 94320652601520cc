"""``vehicle-assist run``: the onboard loop on live devices, or on files standing in for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from vehicle_assist.commands._out import emit, fail, note, progress, say


def open_mic(cfg: Any, clock: Any, mic: str | None, voice: bool) -> tuple[Any, bool, str | None]:
    """The microphone, or a file standing in for it: (source, held for the whole input, why missing)."""
    from vehicle_assist.speech import audio

    if not voice:
        return None, False, "voice lane off (--no-voice)"
    if mic is not None and audio.looks_like_file(mic):  # a file standing in: missing or empty says so
        source = audio.FileSource(Path(mic).expanduser(), cfg.speech.block_ms, now_ns=clock.now_ns)  # at a mic's pace
        try:
            source.check()
        except audio.AudioError as err:
            return None, False, f"[{err.code}] {err.message}"
        return source, True, None
    device = mic if mic is not None else cfg.speech.mic_device
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    candidate = audio.MicSource(clock.now_ns, device, cfg.speech.block_ms)
    try:
        candidate.check()
    except audio.AudioError as err:
        return None, False, f"[{err.code}] {err.message}"
    return candidate, False, None


def open_camera(cfg: Any, clock: Any, camera: str | None) -> tuple[Any, str | None]:
    """The frame source (started: open it after the models are loaded, a file plays in real time),
    and why it is missing. A live camera that does not answer now is kept: it retries with backoff,
    the run speaks the camera-lost alert from the start, and frames are used as soon as they come."""
    from vehicle_assist.perception import sources as frames_mod

    spec = camera if camera is not None else cfg.perception.source
    try:
        frames = frames_mod.open_source(spec, clock=clock, realtime=True, retry_initial_s=cfg.perception.retry_initial_s,
                                        retry_max_s=cfg.perception.retry_max_s)
    except frames_mod.SourceError as err:
        return None, f"[{err.code}] {err.message}"
    if frames.stats.lost:  # a live camera index or URL that does not answer now
        return frames, f"no camera answers at {spec!r}; retrying, hazard warnings are off until it does"
    return frames, None


def _close(*things: Any) -> None:
    """Close opened inputs and outputs before exiting on an error (native threads must not outlive them)."""
    for thing in things:
        close = getattr(thing, "close", None)
        if callable(close):
            close()


def register(app: typer.Typer) -> None:
    @app.command(short_help="Run the assistant on live devices, or on files standing in.")
    def run(
        config_file: Optional[Path] = typer.Option(None, "--config", metavar="FILE", help="Onboard config (default: VA_CONFIG, else configs/default.yaml)."),
        camera: Optional[str] = typer.Option(None, "--camera", metavar="SOURCE", help="Camera index, video file, rtsp:// or http(s):// URL, or image folder (default: perception.source)."),
        mic: Optional[str] = typer.Option(None, "--mic", metavar="DEVICE|FILE", help="Microphone device (index or name) or an audio file standing in for it (default: speech.mic_device)."),
        telemetry: Optional[str] = typer.Option(None, "--telemetry", metavar="SOURCE", help="Vehicle state: telemetry .csv/.jsonl, comma2k19 folder, obd[:PORT], gpsd[:HOST[:PORT]], A+B, or none (default: runtime.vehicle)."),
        no_voice: bool = typer.Option(False, "--no-voice", help="Run the safety lane only (no microphone, ASR or advisories)."),
        trip_log: Optional[Path] = typer.Option(None, "--trip-log", metavar="FILE", help="Trip log file to write (default: a new file in runtime.trip_log_dir)."),
        speaker: str = typer.Option("device", "--speaker", metavar="SINK", help="Audio output: device[:NAME], wav:PATH, or null. Falls back to null when no device exists."),
        duration: Optional[float] = typer.Option(None, "--duration", metavar="SECONDS", min=0.1, help="Stop after this many seconds (default: until Ctrl-C, or until every file input has ended)."),
        as_json: bool = typer.Option(False, "--json", help="Print the run summary as one JSON document."),
    ) -> None:
        """Run the assistant: watch the road, listen to the driver, warn and advise, log the trip.

        Any input may be a file, so it also runs on a machine without devices, for example:

        \b
          vehicle-assist run --camera clip.mp4 --mic question.wav --duration 20

        A camera or microphone that cannot be opened (a device that does not answer, a file that is
        missing, unreadable or empty) is reported and the rest runs; with neither, exit code 3.
        Ctrl-C (SIGINT) or SIGTERM stops gracefully; the trip log is complete either way.
        """
        import asyncio

        from vehicle_assist import audio_out, config, runtime, triplog
        from vehicle_assist.clock import WallClock
        from vehicle_assist.vehicle import VehicleError, open_vehicle_source

        cfg = config.load_app(config_file)
        if trip_log is not None:  # before any device or model is opened: nothing to tear down
            try:
                triplog.check_new(trip_log)
            except triplog.TripLogError as err:
                fail(err, 2)
        clock = WallClock()
        missing: dict[str, str] = {}
        try:
            vehicle = open_vehicle_source(telemetry if telemetry is not None else cfg.runtime.vehicle,
                                          clock.now_ns, clock.now_ns())
        except VehicleError as err:
            fail(err, 2)
        if not vehicle.status().available and vehicle.name != "none":
            missing["vehicle"] = vehicle.status().detail
        mic_src, held, why = open_mic(cfg, clock, mic, not no_voice)
        modes = {"voice": "off (--no-voice)"} if no_voice else {}  # chosen, so a mode, not a missing input
        if why and not no_voice:
            missing["mic"] = why
        button = None
        if mic_src is not None and not held and cfg.speech.activation.mode == "push_to_talk":
            from vehicle_assist.speech.buttons import open_button

            button, why = open_button(cfg.speech.activation.button, clock.now_ns)
            if button is None:  # a live mic nobody can open: listen for the wake phrase instead
                missing["button"] = f"{why}; listening for the wake phrase {cfg.speech.activation.wake_phrase!r} instead"
                cfg = cfg.model_copy(update={"speech": cfg.speech.model_copy(update={
                    "activation": cfg.speech.activation.model_copy(update={"mode": "wake_phrase"})})})
            elif not as_json:
                note("push-to-talk: press Enter to speak, Enter again when done"
                     if cfg.speech.activation.button == "key" else "push-to-talk: hold the button to speak")
        try:
            sink = audio_out.open_sink(speaker)
        except audio_out.AudioOutError as err:
            if speaker != "device":
                fail(f"--speaker {speaker}: {err.message}; use --speaker null or wav:PATH", 2, code=err.code)
            missing["speaker"] = f"[{err.code}] {err.message}; speaking to the null sink"
            sink = audio_out.NullSink()
        with progress("loading models", None, enabled=not as_json):
            parts = runtime.load_parts(cfg, voice=mic_src is not None)
        frames, why = open_camera(cfg, clock, camera)
        if why:
            missing["camera"] = why
        for what, text in missing.items():
            note(f"{what}: {text}")
        for lane, text in modes.items():
            if not as_json:
                note(f"{lane} lane: {text}")
        if (frames is None or "camera" in missing) and mic_src is None:
            if frames is not None:
                frames.close()
            why_not = [f"{k}: {v}" for k, v in missing.items() if k in ("camera", "mic")] + \
                [f"{lane} lane {text}" for lane, text in modes.items()]  # the JSON error says why, too
            fail(f"nothing to run: neither a camera nor a microphone could be opened ({'; '.join(why_not)})", 3,
                 code="no-input")
        sources = runtime.Sources(frames=frames, audio=mic_src, vehicle=vehicle, audio_is_held=held, button=button,
                                  missing=missing, modes=modes)
        try:
            rt = runtime.build(cfg, sources, clock, runtime.Sinks(sink, trip_log), parts)
        except triplog.TripLogError as err:  # e.g. the trip log appeared since the check: close what is open
            _close(frames, button, vehicle, sink)
            fail(err, 2)
        if not as_json:
            note(f"running (trip log {rt.trip_path}); Ctrl-C to stop")
        summary = asyncio.run(rt.run(duration))

        def human(s: dict) -> None:
            pub = s["published"]
            say(f"trip log: {s['trip_log']} ({s['records']} records)")
            say(f"frames {pub.get('frames', 0)} processed {pub.get('detections', 0)}, hazards updates "
                f"{pub.get('hazards', 0)}, alert events {pub.get('alerts', 0)}, transcripts "
                f"{pub.get('transcripts', 0)}, advisories {pub.get('advisories', 0)}, errors {pub.get('errors', 0)}")
            if s["dropped"]:
                say("dropped (consumer too slow, newest kept): "
                    + ", ".join(f"{k} {v}" for k, v in s["dropped"].items()))
            for what, why in s["missing"].items():
                say(f"not used: {what} ({why})")
            for lane, mode in s.get("modes", {}).items():
                say(f"{lane} lane: {mode}")
            say(f"see: vehicle-assist log stats {s['trip_log']}")

        emit(summary, as_json, human)
