"""Recorded drives in MCAP: camera JPEGs (foxglove.CompressedImage), microphone PCM and telemetry as JSON channels.

Channels are found by schema name: ``foxglove.CompressedImage`` (camera), ``foxglove.CameraCalibration``
(focal length), ``vehicle_assist.AudioChunk`` (PCM s16le, base64) and ``vehicle_assist.VehicleState``.
The metadata record ``vehicle_assist.drive`` holds the name, mount height, road type and weather.
Drive time zero is the earliest message's log time.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from vehicle_assist import private
from vehicle_assist.messages import CameraFrame, VehicleState
from vehicle_assist.replay import foxglove
from vehicle_assist.replay.stream import SAMPLE_RATE, DriveInfo, Timed, VoicePcm, audio_stream, merge
from vehicle_assist.replay.errors import DriveError
from vehicle_assist.replay.manifest import Calibration

IMAGE, CALIB, AUDIO, VEHICLE = ("foxglove.CompressedImage", "foxglove.CameraCalibration",
                                "vehicle_assist.AudioChunk", "vehicle_assist.VehicleState")
META = "vehicle_assist.drive"


class McapDrive:
    """A drive read from an MCAP file."""

    def __init__(self, path: Path, voice: Sequence[VoicePcm] = ()) -> None:
        from mcap.reader import make_reader

        self.path, self.voice = path, tuple(voice)
        try:
            with path.open("rb") as f:
                reader = make_reader(f)
                summary = reader.get_summary()
                meta = {m.name: dict(m.metadata) for m in reader.iter_metadata()}
        except Exception as err:  # the mcap package raises many record/EOF errors for a damaged file
            raise DriveError("mcap-invalid", path, "(record stream)", f"a valid MCAP file with a summary ({type(err).__name__}: {err})") from err
        if summary is None:
            raise DriveError("mcap-invalid", path, "(summary)", "an MCAP file with a summary section (finish the writer)")
        self.topics: dict[str, str] = {}
        for ch in summary.channels.values():
            schema = summary.schemas.get(ch.schema_id)
            name = schema.name if schema else ""
            if name in (IMAGE, CALIB, AUDIO, VEHICLE):
                if ch.message_encoding != "json":
                    raise DriveError("mcap-invalid", path, f"channel {ch.topic}", f"message encoding 'json' (got {ch.message_encoding!r})")
                self.topics.setdefault(name, ch.topic)
        if IMAGE not in self.topics:
            raise DriveError("mcap-invalid", path, "(channels)", f"a camera channel with schema {IMAGE}")
        stats = summary.statistics
        counts = {summary.channels[cid].topic: n for cid, n in (stats.channel_message_counts.items() if stats else [])}
        info = meta.get(META, {})
        self.t0 = int(info["t0_ns"]) if "t0_ns" in info else (stats.message_start_time if stats else 0)
        first = next(self._decoded(IMAGE), None)
        if first is None:
            raise DriveError("mcap-invalid", path, f"channel {self.topics[IMAGE]}", "at least one camera image")
        _, _, image = first
        calibration = self._calibration(info)
        frame_count = counts.get(self.topics[IMAGE], 0)
        end_ns = (stats.message_end_time - self.t0) if stats else 0
        fps = float(info.get("frame_rate_hz") or (frame_count / max(end_ns / 1e9, 1e-9) if frame_count > 1 else 1.0))
        self._pcm: np.ndarray | None = None
        self.info = DriveInfo(
            name=info.get("name", path.stem), path=str(path), kind="mcap",
            duration_s=float(info["duration_s"]) if "duration_s" in info else end_ns / 1e9 + 1.0 / fps,
            frame_rate_hz=fps, frame_count=frame_count, width=int(image.shape[1]), height=int(image.shape[0]),
            calibration=calibration, road_type=info.get("road_type") or None, weather=info.get("weather") or None,
            has_audio=AUDIO in self.topics or bool(self.voice), has_telemetry=VEHICLE in self.topics)

    def _raw(self, schema: str) -> Iterator[tuple[int, int, dict]]:
        """(index, log_time, decoded JSON) of each message on the channel of ``schema``."""
        from mcap.reader import make_reader

        topic = self.topics.get(schema)
        if topic is None:
            return
        with self.path.open("rb") as f:
            try:
                for i, (_, _, msg) in enumerate(make_reader(f).iter_messages(topics=[topic])):
                    try:
                        data = json.loads(msg.data)
                    except (json.JSONDecodeError, UnicodeDecodeError) as err:
                        raise DriveError("mcap-invalid", self.path, f"message {i} on {topic} (log_time {msg.log_time})", f"a JSON object ({err})") from err
                    if not isinstance(data, dict):
                        raise DriveError("mcap-invalid", self.path, f"message {i} on {topic}", "a JSON object")
                    yield i, msg.log_time, data
            except DriveError:
                raise
            except Exception as err:
                raise DriveError("mcap-invalid", self.path, f"channel {topic}", f"readable records ({type(err).__name__}: {err})") from err

    def _decoded(self, schema: str) -> Iterator[tuple[int, int, np.ndarray]]:
        import cv2

        for i, log_time, data in self._raw(schema):
            image = cv2.imdecode(np.frombuffer(_b64(data, "data", self.path, i), np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                raise DriveError("mcap-invalid", self.path, f"message {i} on {self.topics[schema]}", f"a decodable {data.get('format', '?')} image")
            yield i, log_time, image

    def _calibration(self, info: dict) -> Calibration | None:
        focal = info.get("focal_px")
        for i, _, data in self._raw(CALIB):
            k = data.get("K")
            if not (isinstance(k, list) and len(k) == 9):
                raise DriveError("mcap-invalid", self.path, f"message {i} on {self.topics[CALIB]}: K", "9 numbers (row-major 3x3)")
            focal = float(k[0])
            break
        if focal is None or "mount_height_m" not in info:
            return None
        return Calibration(focal_px=float(focal), mount_height_m=float(info["mount_height_m"]), note=info.get("calibration_note", ""))

    def _track_pcm(self) -> np.ndarray:
        if self._pcm is None:
            from vehicle_assist.speech.audio import resample

            parts: list[np.ndarray] = []
            for i, log_time, data in self._raw(AUDIO):
                if data.get("encoding", "pcm_s16le") != "pcm_s16le":
                    raise DriveError("mcap-invalid", self.path, f"message {i} on {self.topics[AUDIO]}: encoding", "'pcm_s16le'")
                pcm = np.frombuffer(_b64(data, "data", self.path, i), "<i2").astype(np.float32) / 32768.0
                pcm = resample(pcm, int(data.get("sample_rate", SAMPLE_RATE)), SAMPLE_RATE)
                start = int((log_time - self.t0) * SAMPLE_RATE // 1_000_000_000) - len(pcm)  # log time = block end
                have = sum(len(p) for p in parts)
                if start > have:
                    parts.append(np.zeros(start - have, np.float32))
                parts.append(pcm)
            self._pcm = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return self._pcm

    def messages(self, start_s: float = 0.0, end_s: float | None = None) -> Iterator[Timed]:
        end = self.info.duration_s if end_s is None else min(end_s, self.info.duration_s)
        lo, hi = int(start_s * 1e9), int(end * 1e9)
        streams = [self._frames(lo, hi), self._vehicle(lo, hi)]
        if self.info.has_audio:
            streams.append(audio_stream(self._track_pcm(), self.voice, start_s, end))
        return merge(*streams)

    def vehicle_states(self) -> list[VehicleState]:
        return [m.msg for m in self._vehicle(0, 2**62)]

    def _frames(self, lo: int, hi: int) -> Iterator[Timed]:
        for i, log_time, image in self._decoded(IMAGE):
            t = log_time - self.t0
            if lo <= t < hi:
                yield Timed(t, "frames", CameraFrame(t_ns=t, seq=i, image=image, source=self.info.name))

    def _vehicle(self, lo: int, hi: int) -> Iterator[Timed]:
        for i, log_time, data in self._raw(VEHICLE):
            t = log_time - self.t0
            if lo <= t < hi:
                fields = {k: data.get(k) for k in ("speed_mps", "heading_deg", "lat", "lon", "road_type", "weather",
                                                   "yaw_rate_dps")}
                yield Timed(t, "vehicle", VehicleState(t_ns=t, source=f"mcap:{self.path.name}", **fields))


def _b64(data: dict, key: str, path: Path, i: int) -> bytes:
    try:
        return base64.b64decode(data[key], validate=True)
    except (KeyError, TypeError, binascii.Error) as err:
        raise DriveError("mcap-invalid", path, f"message {i}: {key}", f"base64 data ({err})") from err


def write_drive_mcap(drive, path: Path, jpeg_quality: int = 90, t0_ns: int = 0) -> Path:
    """Write any :class:`Drive` as an MCAP drive file (camera as JPEG, mic as PCM s16le, telemetry)."""
    import cv2
    from mcap.writer import Writer

    info: DriveInfo = drive.info
    with private.open_file(path, "wb") as f:  # trip data: owner-only
        w = Writer(f)
        w.start(profile="", library="vehicle_assist")
        schemas = {"/camera/image": foxglove.COMPRESSED_IMAGE, "/camera/calibration": foxglove.CAMERA_CALIBRATION,
                   "/microphone": foxglove.AUDIO_CHUNK, "/vehicle": foxglove.VEHICLE_STATE}
        ids: dict[str, int] = {}

        def channel(topic: str) -> int:  # registered on first use, so absent streams leave no empty channel
            if topic not in ids:
                schema = schemas[topic]
                sid = w.register_schema(schema["title"], "jsonschema", json.dumps(schema).encode())
                ids[topic] = w.register_channel(topic, "json", sid)
            return ids[topic]
        cal = info.calibration
        meta = {"name": info.name, "t0_ns": str(t0_ns), "frame_rate_hz": str(info.frame_rate_hz),
                "duration_s": str(info.duration_s),
                "road_type": info.road_type or "", "weather": info.weather or ""}
        if cal:
            meta.update(mount_height_m=str(cal.mount_height_m), focal_px=str(cal.focal_px), calibration_note=cal.note)
            cx, cy = info.width / 2, info.height / 2
            k = [cal.focal_px, 0, cx, 0, cal.focal_px, cy, 0, 0, 1]
            msg = {"timestamp": foxglove.stamp(t0_ns), "frame_id": "camera", "width": info.width, "height": info.height,
                   "distortion_model": "plumb_bob", "D": [0, 0, 0, 0, 0], "K": k, "R": [1, 0, 0, 0, 1, 0, 0, 0, 1],
                   "P": [cal.focal_px, 0, cx, 0, 0, cal.focal_px, cy, 0, 0, 0, 1, 0]}
            w.add_message(channel("/camera/calibration"), t0_ns, foxglove.dumps(msg), t0_ns)
        w.add_metadata(META, meta)
        for seq, m in enumerate(drive.messages()):
            t = t0_ns + m.t_ns
            if m.topic == "frames":
                ok, jpg = cv2.imencode(".jpg", m.msg.image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
                data = {"timestamp": foxglove.stamp(t), "frame_id": "camera", "format": "jpeg", "data": foxglove.b64(jpg.tobytes())}
                w.add_message(channel("/camera/image"), t, foxglove.dumps(data), t, seq)
            elif m.topic == "audio":
                pcm = (np.clip(m.msg.pcm, -1, 1) * 32767).astype("<i2").tobytes()
                data = {"timestamp": foxglove.stamp(t), "sample_rate": m.msg.sample_rate, "encoding": "pcm_s16le", "data": foxglove.b64(pcm)}
                w.add_message(channel("/microphone"), t, foxglove.dumps(data), t, seq)
            elif m.topic == "vehicle":
                s = m.msg
                data = {"timestamp": foxglove.stamp(t), "speed_mps": s.speed_mps, "heading_deg": s.heading_deg,
                        "lat": s.lat, "lon": s.lon, "road_type": s.road_type, "weather": s.weather,
                        "yaw_rate_dps": s.yaw_rate_dps}
                w.add_message(channel("/vehicle"), t, foxglove.dumps(data), t, seq)
        w.finish()
    return path
