"""``manifest.yaml`` of a recorded drive: the strict schema and its loader.

A drive folder holds the manifest and its media; committed manifests for fetched clips live in
``sim/manifests/<drive>.yaml`` and say ``root: home`` (media paths relative to VA_HOME).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Literal

from pydantic import Field, model_validator

from vehicle_assist import config, paths
from vehicle_assist.config import ConfigError, StrictModel
from vehicle_assist.replay.errors import DriveError


class Calibration(StrictModel):
    """Camera intrinsics and mounting used to turn box heights into distances."""

    focal_px: float = Field(gt=0, description="focal length in pixels at the video's resolution")
    mount_height_m: float = Field(gt=0, le=5, description="camera height above the road")
    cx: float | None = Field(None, description="column of the road's vanishing point; None: the image centre")
    cy: float | None = Field(None, description="row of the horizon; None: the image centre")
    note: str = ""

    def camera(self, width: int, height: int):
        """As the perception lane's :class:`~vehicle_assist.config.CameraCalibration` for frames of this size."""
        from vehicle_assist.config import CameraCalibration

        return CameraCalibration(width=width, height=height, focal_px=self.focal_px, mount_height_m=self.mount_height_m,
                                 cx=self.cx if self.cx is not None else width / 2,
                                 cy=self.cy if self.cy is not None else height / 2)


class VoiceClip(StrictModel):
    """A recorded utterance played into the microphone stream at drive time ``t``."""

    t: float = Field(ge=0, description="drive time (s) at which the clip starts")
    file: str


class AudioSpec(StrictModel):
    """The drive's microphone: a continuous track and/or timed voice clips."""

    track: str | None = None
    clips: list[VoiceClip] = []
    block_ms: int = Field(20, ge=5, le=200, description="size of each AudioChunk")


class TelemetrySpec(StrictModel):
    """Vehicle telemetry: a CSV/JSONL table (``t`` in seconds) or the comma2k19 numpy layout."""

    file: str
    format: Literal["csv", "jsonl", "comma2k19"] | None = None
    rate_hz: float = Field(10.0, gt=0, le=100, description="output rate for comma2k19 (tables keep their rows)")
    t_offset_s: float = Field(0.0, description="added to telemetry times to get drive time")


class Manifest(StrictModel):
    """One recorded drive."""

    name: str
    description: str = ""
    root: Literal["manifest", "home"] = "manifest"
    video: str | None = None
    """None: a telemetry-only drive (GPS + speed, no camera); ``telemetry`` is then required."""
    frame_rate_hz: float | None = Field(None, gt=0, le=240, description="recorded rate; None: the container's")
    audio: AudioSpec | None = None
    telemetry: TelemetrySpec | None = None
    calibration: Calibration | None = None
    """Required with a video (the camera's intrinsics and mounting)."""
    road_type: str | None = None
    weather: str | None = None
    map: str | None = None
    """The OSM extract the car carries on this drive (``route.map`` for the replay, when the config names none)."""

    @model_validator(mode="after")
    def _camera_or_telemetry(self) -> "Manifest":
        if self.video is None and self.telemetry is None:
            raise ValueError("give a video, or telemetry for a drive without a camera")
        if self.video is not None and self.calibration is None:
            raise ValueError("a drive with a video needs its camera calibration")
        return self


def load_manifest(path: Path | str) -> tuple[Manifest, Path]:
    """Read and validate a manifest; returns it and the folder its relative paths resolve against."""
    path = Path(path)
    try:
        manifest = config.load(path, Manifest)
    except ConfigError as err:
        raise DriveError("manifest-invalid", path, err.key, err.expected) from err
    base = paths.home() if manifest.root == "home" else path.parent.resolve()
    return manifest, base


def media_path(base: Path, rel: str, manifest_path: Path, key: str) -> Path:
    """Resolve a media path of the manifest; a missing file is a DriveError naming the key."""
    p = paths.resolve(rel, base)
    if not p.is_file():
        from vehicle_assist.replay import generated

        generated.ensure([p])  # media the project renders itself (the approach drives) are made here
    if not p.is_file():
        raise DriveError("drive-media-missing", manifest_path, key,
                         f"an existing file at {p} (fetch drives with `vehicle-assist fetch drives`)")
    return p


def manifests_for_video(video: Path | str) -> Iterator[Path]:
    """Manifests of drives whose video is ``video``: ``manifest.yaml`` beside it, then the committed
    ``sim/manifests/*.yaml``. Unreadable manifests are passed over (they name some other drive)."""
    target = Path(video).resolve()
    candidates = [target.parent / "manifest.yaml"] + sorted((paths.sim() / "manifests").glob("*.y*ml"))
    for m in candidates:
        if not m.is_file():
            continue
        try:
            manifest, base = load_manifest(m)
        except DriveError:
            continue
        if manifest.video and paths.resolve(manifest.video, base).resolve() == target:
            yield m


def drive_calibration(video: Path | str) -> tuple[Calibration, Path] | None:
    """The calibration of the drive ``video`` belongs to, and its manifest, as replay would use it."""
    for m in manifests_for_video(video):
        return load_manifest(m)[0].calibration, m
    return None
