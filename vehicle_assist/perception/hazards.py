"""Hazard assessment: a pure function of tracks, ego state and time -> list of :class:`Hazard`.

- Time to collision (TTC) comes from the growth of a track's box scale. With ``h = f*H/d`` the
  inverse height ``1/h`` is proportional to distance, so a line fitted to ``1/h`` over the last
  second gives ``TTC = (1/h) / -(d(1/h)/dt)`` without any calibration. A parabola adds the relative
  acceleration (a braking lead), and the earlier collision of the two is taken.
- Distance comes from the box height, the class's typical real height and the focal length.
- The ego corridor is tested in metres at the object's own distance: ``X = (u - cx) * H / h``.
- Levels (info / caution / warning / critical) use thresholds from ``configs/hazards.yaml`` with
  hysteresis on the previous level of the same track, so they do not flicker.
- Unknown ego speed stays unknown (None): it never caps or lowers a level.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from vehicle_assist import config
from vehicle_assist.config import CameraCalibration, Field, StrictModel
from vehicle_assist.messages import Hazard, HazardLevel, ImageMotion, Track, VehicleState

FOLLOWING_TOO_CLOSE = "following-too-close"
FORWARD_COLLISION = "forward-collision"


class ClassSpec(StrictModel):
    height_m: float = Field(gt=0)
    kind: str
    rigid: bool = False
    """A rigid outline (a car, a bus): when it approaches its box width grows with its height, so a TTC
    needs both (a height that wobbles with the bumper's shadow while the width stays put is no approach).
    Not for people, whose width changes with every stride."""


class TTCSpec(StrictModel):
    window_s: float = Field(1.0, gt=0)
    min_samples: int = Field(6, ge=3)
    min_span_s: float = Field(0.35, gt=0)
    min_hits: int = Field(4, ge=1)
    max_s: float = Field(12.0, gt=0)
    accel_aware: bool = True
    accel_sigma: float = Field(2.0, ge=0)
    accel_window_s: float = Field(1.5, gt=0)
    accel_rigid_only: bool = False
    """The acceleration-aware fit (a braking lead) only for rigid outlines: a person's box height changes
    with stride and posture, and the curvature of 1/h reads that as an accelerating approach."""
    level_z: float = Field(1.0, ge=0)
    max_rel_accel_mps2: float = Field(12.0, gt=0)
    max_jump: float = Field(0.2, gt=0)
    min_box_frac: float = Field(0.028, ge=0)
    max_rel_residual: float = Field(0.08, gt=0)
    edge_margin_px: float = Field(4, ge=0)
    min_t: float = Field(0.0, ge=0)
    """The fitted growth must be this many standard errors from zero (a significant scale change
    over the window, not a wobble of a few pixels)."""
    max_closing_mps: float = Field(1e9, gt=0)
    """Without a known ego speed, a closing speed (distance / TTC) above this is not physical: no TTC."""
    closing_margin_mps: float = Field(3.0, ge=0)
    """With a known ego speed, closing faster than ego speed + this is not physical (a lead on our
    lane does not drive at us): no TTC."""
    distance_tolerance: float = Field(1.3, ge=1.0)
    """Distances from box height are uncertain (real heights vary): closing bounds are checked at
    distance / this."""
    far_m: float = Field(1e9, gt=0)
    far_min_track_s: float = Field(0.0, ge=0)
    """Objects beyond ``far_m`` need a track at least this old before their TTC counts (small far
    boxes are noisy; a consistent track first)."""


class LevelSpec(StrictModel):
    critical_ttc_s: float = Field(gt=0)
    warning_ttc_s: float = Field(gt=0)
    caution_ttc_s: float = Field(gt=0)
    warning_distance_m: float | None = None
    caution_distance_m: float | None = None
    info_distance_m: float = Field(60.0, gt=0)
    min_closing_mps: float = Field(0.0, ge=0)
    distance_needs_motion: bool = False
    """Distance levels only for an object seen closing (its box grows: TTC known), not merely near."""
    min_track_s: float = Field(0.0, ge=0)
    """A TTC of this kind counts only once its track is this old: a new track's box is still settling
    (a car coming out from behind another, an outline the detector firms up), and settling reads as growth."""
    distance_min_closing_mps: float = Field(0.0, ge=0)
    """With ``distance_needs_motion``: the growth must mean closing at least this fast (distance / TTC).
    A person's or rider's own posture, a diagonal crossing in front of a stopped car, a cyclist we slowly
    gain on make a box creep bigger at about walking pace; that is not a threat by itself."""
    warning_headway_s: float | None = None
    """A confirmed track whose box is in the corridor now and that we would reach within this many
    seconds at our own speed (distance / ego speed) is a warning, growing or not: a scooter that cuts in
    close ahead and rides with us. Ego speed from telemetry; without it, the image's ego motion
    (``perception.egomotion``'s rough speed). Below ``headway.min_ego_speed_mps`` (stopped) or unknown:
    never."""


class HysteresisSpec(StrictModel):
    ttc_factor: float = Field(1.25, ge=1.0)
    distance_factor: float = Field(1.2, ge=1.0)
    corridor_factor: float = Field(1.3, ge=1.0)


class CorridorSpec(StrictModel):
    half_width_m: float = Field(1.5, gt=0)
    min_overlap_m: float = Field(0.3, ge=0)
    predict_s: float = Field(1.5, ge=0)


class HeadwaySpec(StrictModel):
    caution_s: float = Field(0.8, gt=0)
    min_ego_speed_mps: float = Field(2.0, ge=0)


class HazardTable(StrictModel):
    """``configs/hazards.yaml``."""

    classes: dict[str, ClassSpec]
    ttc: TTCSpec = TTCSpec()
    levels: dict[str, LevelSpec]
    hysteresis: HysteresisSpec = HysteresisSpec()
    corridor: CorridorSpec = CorridorSpec()
    headway: HeadwaySpec = HeadwaySpec()
    camera: CameraCalibration = CameraCalibration()


def load_table(path: Path | str | None = None) -> HazardTable:
    """Load and check ``configs/hazards.yaml`` (every class kind must have a level entry)."""
    path = Path(path) if path else config.config_path("hazards.yaml")
    table = config.load(path, HazardTable)
    for name, cls in table.classes.items():
        if cls.kind not in table.levels:
            raise config.ConfigError(path, f"classes.{name}.kind", f"a kind listed under levels (got {cls.kind!r})")
    for kind, lv in table.levels.items():
        if not lv.critical_ttc_s < lv.warning_ttc_s < lv.caution_ttc_s:
            raise config.ConfigError(path, f"levels.{kind}", "critical_ttc_s < warning_ttc_s < caution_ttc_s")
    return table


@functools.lru_cache(maxsize=1)
def default_table() -> HazardTable:
    """The table from configs/hazards.yaml, loaded once."""
    return load_table()


@dataclass(frozen=True)
class TTCEstimate:
    """Time to collision from box-scale growth.

    ``ttc_s`` is the best estimate (the earlier of constant-velocity and acceleration-aware);
    ``ttc_cv_s`` the constant-velocity one; ``ttc_bound_s`` the conservative bound that levels use:
    the closing rate and the curvature are each taken ``level_z`` standard errors towards "not
    closing", so noise on a small far box cannot raise a warning by itself.
    """

    ttc_s: float | None
    ttc_cv_s: float | None
    ttc_bound_s: float | None
    samples: int


_NONE = TTCEstimate(None, None, None, 0)


def _root(a: float, b: float, c: float) -> float | None:
    """The first positive time where a + b*T + c*T^2 reaches zero (None if never)."""
    if abs(c) < 1e-12:
        return a / -b if b < 0 else None
    disc = b * b - 4 * c * a
    if disc < 0:
        return None
    roots = [r for r in ((-b - math.sqrt(disc)) / (2 * c), (-b + math.sqrt(disc)) / (2 * c)) if r > 0]
    return min(roots) if roots else None


def _robust_fit(t: np.ndarray, y: np.ndarray, w: np.ndarray, deg: int, keep: int):
    """Weighted polynomial fit that drops outliers (a box that jumped for one frame) and refits.

    Returns (coefficients highest power first, their standard errors, inlier mask).
    """
    mask = np.ones(len(t), bool)
    for _ in range(2):
        coef = np.polyfit(t[mask], y[mask], deg, w=w[mask])
        res = (y - np.polyval(coef, t)) * w
        scale = 1.4826 * float(np.median(np.abs(res[mask]))) + 1e-12
        new = np.abs(res) <= 3.0 * scale
        if new.sum() < keep or (new == mask).all():
            break
        mask = new
    coef, cov = np.polyfit(t[mask], y[mask], deg, w=w[mask], cov="unscaled")
    res = (y[mask] - np.polyval(coef, t[mask])) * w[mask]
    s2 = float(np.sum(res ** 2)) / max(int(mask.sum()) - deg - 1, 1)
    return coef, np.sqrt(np.clip(np.diag(cov) * s2, 0, None)), mask


def estimate_ttc(history: Iterable[tuple[int, float]], now_ns: int, spec: TTCSpec,
                 distance_m: float | None = None, accel: bool = True) -> TTCEstimate:
    """TTC (s) from ``(t_ns, box_height_px)`` samples; None when not closing or too little data.

    With ``distance_m`` known, a fitted relative deceleration beyond ``spec.max_rel_accel_mps2``
    (physically impossible, so noise) is ignored. ``accel`` False: constant closing speed only.
    """
    longest = max(spec.window_s, spec.accel_window_s if spec.accel_aware else 0.0)
    all_pts = [(t, h) for t, h in history if h > 0 and now_ns - t <= longest * 1e9 and t <= now_ns]
    # a jump between consecutive boxes beyond max_jump is a measurement change (occlusion, a box
    # snapping to another outline), not motion: only the samples after the last jump are used
    for i in range(len(all_pts) - 1, 0, -1):
        if abs(all_pts[i][1] / all_pts[i - 1][1] - 1.0) > spec.max_jump:
            all_pts = all_pts[i:]
            break
    pts = [(t, h) for t, h in all_pts if now_ns - t <= spec.window_s * 1e9]
    n = len(pts)
    if n < spec.min_samples:
        return TTCEstimate(None, None, None, n)
    t = np.array([(p[0] - now_ns) / 1e9 for p in pts])
    if t[-1] - t[0] < spec.min_span_s:
        return TTCEstimate(None, None, None, n)
    hs = np.array([p[1] for p in pts])
    y = 1.0 / hs
    # var(1/h) ~ sigma^2 / h^4 for a pixel noise sigma: weight each sample by h^2 (polyfit's w is 1/sd)
    w = (hs / hs.max()) ** 2
    (b, a), (sd_b, _), mask = _robust_fit(t, y, w, 1, spec.min_samples)  # y ~ a + b*t; a = 1/h now
    if a <= 0 or b >= 0:
        return TTCEstimate(None, None, None, n)
    res = (y - (a + b * t))[mask]
    resid = math.sqrt(float(np.sum(w[mask] * res ** 2) / np.sum(w[mask]))) / a
    if resid > spec.max_rel_residual:
        return TTCEstimate(None, None, None, n)
    cv = a / -b
    if cv > spec.max_s or -b < spec.min_t * sd_b:  # too slow, or growth not significant
        return TTCEstimate(None, None, None, n)
    b_bound = b + spec.level_z * sd_b
    best = cv
    bound = a / -b_bound if b_bound < 0 else None
    ta = np.array([(p[0] - now_ns) / 1e9 for p in all_pts])
    if spec.accel_aware and accel and len(all_pts) >= 2 * spec.min_samples and ta[-1] - ta[0] >= 0.6 * spec.accel_window_s:
        ha = np.array([p[1] for p in all_pts])
        (c2, b2, a2), (sd_c2, sd_b2, _), _ = _robust_fit(ta, 1.0 / ha, (ha / ha.max()) ** 2, 2, 2 * spec.min_samples)
        # only a significant shrinking of the gap's rate counts (a braking lead)
        # y is proportional to the gap, so y''/y = 2*c2/a2 is the relative acceleration per metre of gap
        plausible = distance_m is None or abs(2 * c2 / a2) * distance_m <= spec.max_rel_accel_mps2
        if a2 > 0 and b2 < 0 and c2 < -spec.accel_sigma * sd_c2 and plausible:
            root = _root(a2, b2, c2)
            if root is not None and root < best:
                best = root
            root_b = _root(a2, min(b2 + spec.level_z * sd_b2, 0.0), c2 + spec.level_z * sd_c2)
            if root_b is not None and (bound is None or root_b < bound):
                bound = root_b
    return TTCEstimate(best, cv, bound, n)


def distance_m(box_height_px: float, real_height_m: float, calib: CameraCalibration) -> float | None:
    """Pinhole distance from a box height; None for degenerate boxes."""
    return calib.focal_px * real_height_m / box_height_px if box_height_px > 1 else None


def corridor_overlap_m(box: tuple[float, float, float, float], real_height_m: float, calib: CameraCalibration,
                       half_width_m: float) -> float:
    """How far (m) the object reaches into the ego corridor ``[-half_width, +half_width]``."""
    x1, y1, x2, y2 = box
    h = max(y2 - y1, 1.0)
    left, right = (x1 - calib.cx) * real_height_m / h, (x2 - calib.cx) * real_height_m / h
    return min(right, half_width_m) - max(left, -half_width_m)


def lateral_extent(track: Track, real_height_m: float, calib: CameraCalibration, now_ns: int, window_s: float,
                   horizon_s: float) -> tuple[float, float] | None:
    """Where the object's left/right edges (m from the corridor centre line) will be in ``horizon_s``.

    Each sample's edges are converted to metres at that sample's own scale (``H / h``); a line
    through the centre's motion predicts ahead. None when the track has too little edge history.
    """
    pts = [(t, x1, x2, h) for (t, x1, x2), (_, h) in zip(track.edges, track.history)
           if h > 0 and now_ns - t <= window_s * 1e9]
    if len(pts) < 4 or (pts[-1][0] - pts[0][0]) < 0.2e9:
        return None
    t = np.array([(p[0] - now_ns) / 1e9 for p in pts])
    centre = np.array([((p[1] + p[2]) / 2 - calib.cx) * real_height_m / p[3] for p in pts])
    v = float(np.polyfit(t, centre, 1)[0])
    _, x1, x2, h = pts[-1]
    left, right = (x1 - calib.cx) * real_height_m / h, (x2 - calib.cx) * real_height_m / h
    return left + v * horizon_s, right + v * horizon_s


def _ridden(track: Track, tracks: list[Track]) -> bool:
    """A person box mostly inside a bicycle/motorcycle box is its rider (the bike carries the hazard)."""
    px1, py1, px2, py2 = track.box
    area = max((px2 - px1) * (py2 - py1), 1.0)
    for o in tracks:
        if o.label in ("bicycle", "motorcycle", "cyclist", "motorcyclist"):
            ox1, oy1, ox2, oy2 = o.box
            inter = max(0.0, min(px2, ox2) - max(px1, ox1)) * max(0.0, min(py2, oy2) - max(py1, oy1))
            if inter / area >= 0.3:
                return True
    return False


def plausible(ttc: TTCEstimate, dist: float | None, track: Track, now_ns: int, ego_speed: float | None,
              spec: TTCSpec, min_track_s: float = 0.0) -> bool:
    """Whether a TTC estimate can be trusted (pure): the closing speed it implies is physically possible
    (at most ``max_closing_mps``, or ego speed + margin when the speed is known), and a far object has
    been tracked long enough (``min_track_s``, the kind's, and ``far_min_track_s`` beyond ``far_m``). An implausible estimate is noise (a box that snapped, a small far box)."""
    if ttc.ttc_cv_s is None or dist is None:
        return True
    closing = dist / spec.distance_tolerance / ttc.ttc_cv_s
    limit = spec.max_closing_mps if ego_speed is None else ego_speed + spec.closing_margin_mps
    if closing > limit:
        return False
    age_s = (now_ns - track.first_t_ns) / 1e9
    if age_s < min_track_s:
        return False
    return not (dist > spec.far_m and age_s < spec.far_min_track_s)


def widths(track: Track) -> tuple[tuple[int, float], ...]:
    """The track's ``(t_ns, box_width_px)`` samples (from its edge history)."""
    return tuple((t, x2 - x1) for t, x1, x2 in track.edges)


def both_dimensions(by_height: TTCEstimate, by_width: TTCEstimate) -> TTCEstimate:
    """A rigid object's TTC (pure): the height's estimate, when its width grows significantly too (a
    width-based TTC exists); none otherwise. The height's is kept because the width's, from fewer pixels
    of change on a far car, finds a braking lead's curvature later."""
    return by_height if by_width.ttc_cv_s is not None else TTCEstimate(None, None, None, by_height.samples)


def approaching(ttc: TTCEstimate, hits: int, min_hits: int, dist: float | None, min_closing_mps: float = 0.0) -> bool:
    """Whether a track is seen closing (pure): an accepted growth fit (TTC known) on a confirmed track,
    closing at least ``min_closing_mps`` (distance / constant-velocity TTC). Distance levels of vulnerable
    road users need it."""
    if hits < min_hits or ttc.ttc_cv_s is None:
        return False
    return min_closing_mps <= 0 or (dist is not None and dist / ttc.ttc_cv_s >= min_closing_mps)


def _truncated(box: tuple[float, float, float, float], calib: CameraCalibration, margin: float) -> bool:
    x1, y1, x2, y2 = box
    return x1 <= margin or y1 <= margin or x2 >= calib.width - margin or y2 >= calib.height - margin


def ego_speed_of(ego_speed: float | None, motion: ImageMotion | None) -> float | None:
    """Our forward speed (pure): telemetry's when it has one; else the image's rough estimate (its
    flow speed proxy); else unknown (None)."""
    if ego_speed is not None:
        return ego_speed
    return None if motion is None or motion.speed_mps is None else max(float(motion.speed_mps), 0.0)


def assess(tracks: Iterable[Track], ego: VehicleState | None, now_ns: int, calib: CameraCalibration,
           prev_levels: Mapping[int, HazardLevel] | None = None, table: HazardTable | None = None,
           max_age_s: float = 0.3, motion: ImageMotion | None = None) -> list[Hazard]:
    """Assess every current track; returns hazards of level >= INFO, worst first.

    ``motion``: the ego motion read from the image (``perception.egomotion``), used only where
    telemetry gives no speed (the headway level of vulnerable road users: ``warning_headway_s``).

    ``calib`` must describe the frames the tracks' boxes are in (see ``CameraCalibration.scaled``).
    ``prev_levels`` maps track id -> the level of the previous call (hysteresis); pass
    :func:`levels_of` of the previous result.
    """
    table = table or default_table()
    prev_levels = prev_levels or {}
    ego_speed = ego.speed_mps if ego is not None else None
    speed_any = ego_speed_of(ego_speed, motion)  # telemetry, else the image's estimate
    current = [t for t in tracks if t.label in table.classes and now_ns - t.t_ns <= max_age_s * 1e9]
    out: list[Hazard] = []
    for tr in current:
        cls = table.classes[tr.label]
        if tr.label == "person" and _ridden(tr, current):
            continue
        kind = cls.kind
        spec = table.levels[kind]
        hy = table.hysteresis
        prev = prev_levels.get(tr.track_id, HazardLevel.NONE)
        h_px = tr.box[3] - tr.box[1]
        dist = distance_m(h_px, cls.height_m, calib)
        ttc = _NONE
        if (tr.hits >= table.ttc.min_hits and h_px >= table.ttc.min_box_frac * calib.height
                and not _truncated(tr.box, calib, table.ttc.edge_margin_px)):
            ttc = estimate_ttc(tr.history, now_ns, table.ttc, dist, accel=cls.rigid or not table.ttc.accel_rigid_only)
            if cls.rigid and ttc.ttc_s is not None and tr.edges:  # (a track without edge history: height alone)
                ttc = both_dimensions(ttc, estimate_ttc(widths(tr), now_ns, table.ttc, dist))
            if not plausible(ttc, dist, tr, now_ns, ego_speed, table.ttc, spec.min_track_s):
                ttc = _NONE
        half = table.corridor.half_width_m * (hy.corridor_factor if prev >= HazardLevel.CAUTION else 1.0)
        width_m = (tr.box[2] - tr.box[0]) * cls.height_m / max(h_px, 1.0)
        need = min(table.corridor.min_overlap_m, width_m)
        horizon = min(ttc.ttc_s if ttc.ttc_s is not None else math.inf, table.corridor.predict_s)
        ahead = lateral_extent(tr, cls.height_m, calib, now_ns, table.ttc.window_s, horizon)
        if ahead is not None:  # where it will be: an oncoming car passing by leaves the corridor
            in_corridor = bool(min(ahead[1], half) - max(ahead[0], -half) >= need)
        else:
            in_corridor = bool(corridor_overlap_m(tr.box, cls.height_m, calib, half) >= need)
        # closing: the box grows with an accepted fit (TTC known); a person standing beside a stopped car
        # or crossing in front of one keeps its size
        closing_seen = approaching(ttc, tr.hits, table.ttc.min_hits, dist, spec.distance_min_closing_mps)

        level = HazardLevel.NONE
        if dist is not None and dist <= spec.info_distance_m * (hy.distance_factor if prev >= HazardLevel.INFO else 1.0):
            level = HazardLevel.INFO
        if in_corridor:
            closing = dist / ttc.ttc_cv_s if dist is not None and ttc.ttc_cv_s else None
            # a low-speed approach reaches only critical, unless the gap is closing faster and faster (a braking lead)
            braking = ttc.ttc_s is not None and ttc.ttc_cv_s is not None and ttc.ttc_s < 0.9 * ttc.ttc_cv_s
            slow = closing is not None and closing < spec.min_closing_mps and not braking
            for lv, thr in ((HazardLevel.CRITICAL, spec.critical_ttc_s), (HazardLevel.WARNING, spec.warning_ttc_s),
                            (HazardLevel.CAUTION, spec.caution_ttc_s)):
                if lv < HazardLevel.CRITICAL and slow:
                    break
                if ttc.ttc_bound_s is not None and ttc.ttc_bound_s <= thr * (hy.ttc_factor if prev >= lv else 1.0):
                    level = max(level, lv)
                    break
            for lv, thr_d in ((HazardLevel.WARNING, spec.warning_distance_m), (HazardLevel.CAUTION, spec.caution_distance_m)):
                if spec.distance_needs_motion and not closing_seen and prev < lv:
                    continue  # not entered without growth; a level already held keeps its hysteresis
                if thr_d is not None and dist is not None and dist <= thr_d * (hy.distance_factor if prev >= lv else 1.0):
                    level = max(level, lv)
                    break
            if (kind == FORWARD_COLLISION and level < HazardLevel.CAUTION and ego_speed is not None and dist is not None
                    and ego_speed >= table.headway.min_ego_speed_mps
                    and dist / ego_speed < table.headway.caution_s * (hy.ttc_factor if prev >= HazardLevel.CAUTION else 1.0)):
                level, kind = HazardLevel.CAUTION, FOLLOWING_TOO_CLOSE
        if (spec.warning_headway_s is not None and speed_any is not None and dist is not None
                and tr.hits >= table.ttc.min_hits and speed_any >= table.headway.min_ego_speed_mps
                and dist / speed_any < spec.warning_headway_s * (hy.ttc_factor if prev >= HazardLevel.WARNING else 1.0)
                and corridor_overlap_m(tr.box, cls.height_m, calib, half) >= need):
            # in our path now (not where its lateral motion may take it) and we would reach it within the headway
            level, in_corridor = max(level, HazardLevel.WARNING), True
        if ego_speed is not None and ego_speed < table.headway.min_ego_speed_mps:
            level = min(level, HazardLevel.INFO if cls.kind == FORWARD_COLLISION else HazardLevel.CAUTION)
        if level == HazardLevel.NONE:
            continue
        closing = dist / ttc.ttc_cv_s if dist is not None and ttc.ttc_cv_s else None
        out.append(Hazard(t_ns=now_ns, kind=kind, level=level, label=tr.label, track_id=tr.track_id,
                          distance_m=_round(dist), ttc_s=_round(ttc.ttc_s), in_corridor=in_corridor,
                          closing_speed_mps=_round(closing)))
    out.sort(key=lambda h: (-int(h.level), h.ttc_s if h.ttc_s is not None else math.inf,
                            h.distance_m if h.distance_m is not None else math.inf))
    return out


def levels_of(hazards: Iterable[Hazard]) -> dict[int, HazardLevel]:
    """Track id -> level, to pass as ``prev_levels`` on the next call."""
    return {h.track_id: h.level for h in hazards if h.track_id is not None}


def _round(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


__all__ = ["CameraCalibration", "HazardTable", "TTCEstimate", "assess", "ego_speed_of", "approaching", "both_dimensions", "widths", "plausible", "estimate_ttc", "distance_m", "lateral_extent",
           "corridor_overlap_m", "load_table", "default_table", "levels_of", "FORWARD_COLLISION",
           "FOLLOWING_TOO_CLOSE"]
