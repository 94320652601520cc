"""Recorded drives behind one :class:`Drive` interface, yielding our messages in drive-time order.

Formats: a folder (or a committed manifest file) with ``manifest.yaml``; a bare video file (no
calibration); an MCAP file (:mod:`.mcap_drive`). ``open_drive`` picks the reader. What every drive
yields is defined in :mod:`.stream` (re-exported here). Every drive yields
:class:`Timed` items on the topics ``vehicle`` (VehicleState), ``audio`` (AudioChunk, time = the end
of the block, when a live microphone would deliver it) and ``frames`` (CameraFrame), sorted by time;
at equal times vehicle state comes first, then audio, then the frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from vehicle_assist import paths
from vehicle_assist.messages import CameraFrame, VehicleState
from vehicle_assist.replay.errors import DriveError
from vehicle_assist.replay.manifest import Calibration, Manifest, load_manifest, media_path
from vehicle_assist.replay.stream import SAMPLE_RATE, TOPIC_RANK, Drive, DriveInfo, Timed, VoicePcm, audio_stream, merge  # noqa: F401 (re-exported)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")


@dataclass(frozen=True)
class VideoRead:
    """What one full pass over a drive's video actually decoded (container frame counts are claims)."""

    frames: int
    """Frames decoded and yielded in the window."""
    until_s: float
    """Drive time just after the last frame yielded (the start of the window when none was)."""
    ended_early: bool
    """A frame the container promised inside the window could not be decoded (a truncated file)."""
    claimed_frames: int
    """The container's frame count."""


def is_name(spec: str | Path) -> bool:
    """A bare name (``highway_cars_1s``, ``highway_cars_1s.mp4``), also looked up in ``sim/``, rather than a path."""
    return str(spec) == Path(spec).name


def resolve_drive(spec: str | Path) -> Path:
    """A drive name (``sim/manifests/<name>.yaml``) or a path: absolute, as typed (relative to the
    cwd, like any command-line path), or relative to VA_HOME."""
    p = Path(spec)
    named = [paths.sim() / "manifests" / f"{spec}.yaml", paths.sim() / "drives" / str(spec)] if is_name(spec) else []
    candidates = [p] if p.is_absolute() else list(dict.fromkeys([p.resolve(), paths.resolve(p), *named]))  # each once
    for c in candidates:
        if c.exists():
            return c
    raise DriveError("drive-missing", spec, "(path)", f"a drive folder, manifest, video or .mcap file; looked at {', '.join(map(str, candidates))}")


def open_drive(spec: str | Path, voice: Sequence[VoicePcm] = ()) -> Drive:
    """Open a drive by name or path; ``voice`` adds scripted utterances to its microphone stream."""
    path = resolve_drive(spec)
    if path.is_dir():
        manifest = path / "manifest.yaml"
        if not manifest.is_file():
            raise DriveError("manifest-missing", path, "manifest.yaml", "a manifest.yaml in the drive folder")
        return FolderDrive(manifest, voice)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return FolderDrive(path, voice)
    if suffix == ".mcap":
        from vehicle_assist.replay.mcap_drive import McapDrive

        return McapDrive(path, voice)
    if suffix in VIDEO_SUFFIXES:
        return VideoDrive(path, voice=voice)
    raise DriveError("drive-format", path, "(file name)", "a folder, manifest (.yaml), video (" + ", ".join(VIDEO_SUFFIXES) + ") or .mcap")


def ensure_drive(drive_spec: str | Path, progress=None) -> list[Path]:
    """:func:`generated.ensure` for the media a drive manifest names (nothing for other kinds of drive):
    the approach videos and route telemetry the project renders itself, made before the drive opens."""
    from vehicle_assist.config import ConfigError
    from vehicle_assist.replay import generated
    from vehicle_assist.replay.errors import ReplayError

    try:
        path = resolve_drive(drive_spec)
        if path.is_dir():
            path = path / "manifest.yaml"
        if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
            return []
        manifest, base = load_manifest(path)
    except (ReplayError, ConfigError):  # opening the drive reports it properly
        return []
    media = [paths.resolve(manifest.video, base)] if manifest.video else []
    media += [paths.resolve(manifest.telemetry.file, base)] if manifest.telemetry else []
    return generated.ensure(media, progress)


class VideoDrive:
    """A video file, with optional calibration, audio track, voice clips and telemetry."""

    def __init__(self, video: Path | None, *, name: str | None = None, frame_rate_hz: float | None = None,
                 calibration: Calibration | None = None, audio_track: Path | None = None,
                 voice: Sequence[VoicePcm] = (), telemetry: Sequence[VehicleState] = (),
                 block_ms: int = 20, road_type: str | None = None, weather: str | None = None,
                 kind: str = "video", source_path: Path | None = None) -> None:
        import cv2

        self.video, self.audio_track, self.voice = video, audio_track, tuple(voice)
        self.telemetry, self.block_ms = tuple(telemetry), block_ms
        self._pcm: np.ndarray | None = None
        if video is None:  # a telemetry-only drive (GPS + speed, no camera): it lasts as long as its telemetry
            if not self.telemetry:
                raise DriveError("drive-empty", source_path or name or "(drive)", "video/telemetry",
                                 "a video, or telemetry for a drive without a camera")
            self.info = DriveInfo(
                name=name or "drive", path=str(source_path or name), kind=kind,
                duration_s=self.telemetry[-1].t_ns / 1e9 + 0.1, frame_rate_hz=0.0, frame_count=0, width=0, height=0,
                calibration=calibration, road_type=road_type, weather=weather,
                has_audio=audio_track is not None or bool(self.voice), has_telemetry=True)
            return
        cap = cv2.VideoCapture(str(video))
        if not cap.isOpened():
            raise DriveError("video-unreadable", video, "(open)", "a video file OpenCV/ffmpeg can decode")
        container_fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, first = cap.read()
        cap.release()
        if not ok or first is None:
            raise DriveError("video-unreadable", video, "frame 0", "at least one decodable frame")
        fps = frame_rate_hz or container_fps
        if not fps or fps <= 0:
            raise DriveError("video-unreadable", video, "(stream header)", "a frame rate (set frame_rate_hz in the manifest)")
        self._pcm: np.ndarray | None = None
        self.last_read: VideoRead | None = None
        """Set when a pass over the frames ends: what was really decoded."""
        self.info = DriveInfo(
            name=name or video.stem, path=str(source_path or video), kind=kind, duration_s=count / fps,
            frame_rate_hz=fps, frame_count=count, width=int(first.shape[1]), height=int(first.shape[0]),
            calibration=calibration, road_type=road_type, weather=weather,
            has_audio=audio_track is not None or bool(self.voice), has_telemetry=bool(self.telemetry))

    def messages(self, start_s: float = 0.0, end_s: float | None = None) -> Iterator[Timed]:
        end = self.info.duration_s if end_s is None else min(end_s, self.info.duration_s)
        streams = [self._frames(start_s, end), self._vehicle(start_s, end)]
        if self.info.has_audio:
            streams.append(audio_stream(self._track_pcm(), self.voice, start_s, end, self.block_ms))
        return merge(*streams)

    def vehicle_states(self) -> list[VehicleState]:
        return list(self.telemetry)

    def _track_pcm(self) -> np.ndarray:
        if self._pcm is None:
            self._pcm = np.zeros(0, np.float32)
            if self.audio_track is not None:
                from vehicle_assist.speech.audio import AudioError, load_audio

                try:
                    self._pcm, _ = load_audio(self.audio_track, SAMPLE_RATE)
                except AudioError as err:
                    raise DriveError("audio-unreadable", self.audio_track, "(audio stream)", f"a decodable audio track ({err})") from err
        return self._pcm

    def _vehicle(self, start_s: float, end_s: float) -> Iterator[Timed]:
        lo, hi = int(start_s * 1e9), int(end_s * 1e9)
        for s in self.telemetry:
            if lo <= s.t_ns < hi:
                yield Timed(s.t_ns, "vehicle", s)

    def _frames(self, start_s: float, end_s: float) -> Iterator[Timed]:
        import cv2

        if self.video is None:
            return

        cap = cv2.VideoCapture(str(self.video))
        fps, src = self.info.frame_rate_hz, self.info.name
        n, early, until_s = 0, False, start_s
        try:
            index = 0
            while True:
                t_s = index / fps
                if t_s >= end_s - 1e-9:
                    break
                if t_s < start_s - 1e-9:
                    if not cap.grab():
                        early = index < self.info.frame_count - 1  # one short: a rounded count, not a cut
                        break
                    index += 1
                    continue
                ok, image = cap.read()
                if not ok or image is None:  # container frame counts are claims: a stream may end early
                    early = index < self.info.frame_count - 1
                    break
                t_ns = int(round(t_s * 1e9))
                yield Timed(t_ns, "frames", CameraFrame(t_ns=t_ns, seq=index, image=image, source=src))
                n, until_s = n + 1, (index + 1) / fps
                index += 1
            self.last_read = VideoRead(n, round(until_s, 3), early, self.info.frame_count)
        finally:
            cap.release()


class FolderDrive(VideoDrive):
    """A drive described by a manifest (a drive folder's ``manifest.yaml`` or ``sim/manifests/<name>.yaml``)."""

    def __init__(self, manifest_path: Path, voice: Sequence[VoicePcm] = ()) -> None:
        from vehicle_assist.speech.audio import AudioError, load_audio
        from vehicle_assist.replay.telemetry import read_telemetry

        manifest, base = load_manifest(manifest_path)
        self.manifest = manifest
        video = media_path(base, manifest.video, manifest_path, "video") if manifest.video else None
        clips: list[VoicePcm] = list(voice)
        track = None
        if manifest.audio:
            if manifest.audio.track:
                track = media_path(base, manifest.audio.track, manifest_path, "audio.track")
            for i, clip in enumerate(manifest.audio.clips):
                p = media_path(base, clip.file, manifest_path, f"audio.clips.{i}.file")
                try:
                    pcm, _ = load_audio(p, SAMPLE_RATE)
                except AudioError as err:
                    raise DriveError("audio-unreadable", p, "(audio stream)", f"a decodable audio file ({err})") from err
                clips.append(VoicePcm(clip.t, pcm, label=p.name))
        states: list[VehicleState] = []
        if manifest.telemetry:
            tp = paths.resolve(manifest.telemetry.file, base)
            if not tp.exists():
                from vehicle_assist.replay import generated

                generated.ensure([tp])  # telemetry the project generates itself (the route drives) is made here
            if not tp.exists():
                raise DriveError("drive-media-missing", manifest_path, "telemetry.file", f"an existing file or folder at {tp}")
            states = read_telemetry(tp, manifest.telemetry.format, manifest.telemetry.t_offset_s, manifest.telemetry.rate_hz)
            states = [_with_context(s, manifest) for s in states]
        super().__init__(video, name=manifest.name, frame_rate_hz=manifest.frame_rate_hz,
                         calibration=manifest.calibration, audio_track=track, voice=clips, telemetry=states,
                         block_ms=manifest.audio.block_ms if manifest.audio else 20,
                         road_type=manifest.road_type, weather=manifest.weather, kind="folder",
                         source_path=manifest_path)


def _with_context(s: VehicleState, m: Manifest) -> VehicleState:
    """Fill road type and weather from the manifest where the telemetry does not know them."""
    if (s.road_type or not m.road_type) and (s.weather or not m.weather):
        return s
    from dataclasses import replace

    return replace(s, road_type=s.road_type or m.road_type, weather=s.weather or m.weather)
