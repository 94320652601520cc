"""GPS fixes -> the directed road edge the car is on: an online hidden Markov model (Viterbi).

After Newson & Krumm (2009), "Hidden Markov map matching through noise and sparseness":

- States: candidate places on directed edges (a segment of a way, in a direction the way may be
  driven) within ``radius_m`` of the fix; a two-way road gives two states per segment, so the
  direction of travel is part of the match (dual carriageways, U-turns).
- Emission: Gaussian in the fix's distance to the candidate (``sigma_m``), times a Gaussian in the
  angle between the edge and the GNSS heading when the fix carries one and the car moves; without
  one, the course over ground estimated from the last few seconds of fixes (a least-squares line,
  only once the car travelled far enough; differences up to ``course_free_deg`` are free, since
  the estimate lags in turns).
- Transition: Laplace in the difference between the route distance from the previous candidate
  to this one (along the directed graph; a bounded Dijkstra; a small move backwards along the
  same road is allowed, a U-turn costs ``uturn_cost``) and the distance the car travelled: the
  integral of its speed when speed is known (CAN/OBD odometry, far steadier than GNSS), else the
  great-circle distance between the fixes. A turn prior: each turn the route takes at a junction
  (a node offering more than one way on) costs ``turn_cost`` per 90 deg, scaled by the lowest
  speed since the last step (``turn_speed_mps``: sharp turns at speed are unlikely), and turning
  off a road onto a minor way (``minor_classes``: driveways, car-park aisles) costs ``minor_cost``;
  going straight on is free. Without them short dead-end driveways beside a street take the match
  whenever the GNSS error leans their way.
- Place along the road: the best predecessor's place moved on by the distance travelled, fused
  with the fix's projection (a 1-D Kalman update, ``along_q``): the speed integral is steadier
  than GNSS along the road, which decides when the car reaches a junction. With a GNSS course
  (``turn_fix_sigma_m``): where the route turns onto the candidate's edge, the moment the course
  swung through that turn puts the car at the node; the distance travelled since is fused in too
  (the turn fix: the coloured GNSS error along the road no longer carries over a turn).

Online: fixes arrive one by one. A Viterbi step is taken when the car has travelled ``step_m``
since the last one (or ``max_step_s`` has passed), which keeps consecutive fixes' noise from
dominating the transition; between steps the matched place is carried forward by the distance
travelled along the current edge. The answer at each fix is the current best state (filtering,
no look-ahead lag). No candidate within ``radius_m`` means no match (no claim): the fix is
outside the map's coverage or far off its roads; the model restarts from the next fix that has
candidates. A position gap longer than ``max_gap_s`` restarts it too.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from vehicle_assist.route.ahead import next_edge
from vehicle_assist.route.heading import GyroHeading
from vehicle_assist.route.map import RoadMap, bearing_diff_deg, haversine_m


@dataclass(frozen=True)
class Fix:
    """One position report. Unknown is None; ``t_s`` in seconds of the track's own clock."""

    t_s: float
    lat: float | None
    lon: float | None
    speed_mps: float | None = None
    heading_deg: float | None = None
    yaw_rate_dps: float | None = None
    """Yaw rate from a gyro or the ESC's CAN yaw-rate signal (deg/s, clockwise positive, as compass
    headings grow)."""


@dataclass(frozen=True)
class MatchSettings:
    sigma_m: float = 10.0
    """GNSS position noise (1 sigma, metres)."""
    radius_m: float = 50.0
    """Candidate search radius; no road this close: no match."""
    beta_m: float = 8.0
    """Scale of the transition's route-vs-travelled distance difference."""
    heading_sigma_deg: float = 20.0
    heading_min_speed_mps: float = 3.0
    course_window_s: float = 3.0
    """Course over ground estimated from the fixes of the last this many seconds (a fix without a GNSS
    heading); 0 turns the estimate off. A slower receiver (1 Hz) has too few fixes in it: the window
    then keeps the last ``course_min_fixes``, if they lie within 3 windows."""
    course_min_fixes: int = 5
    course_min_m: float = 15.0
    """...only when the car travelled at least this far in that window (shorter: too noisy)."""
    course_sigma_deg: float = 35.0
    course_free_deg: float = 45.0
    """The estimated course lags in turns: differences up to this cost nothing, beyond it a
    Gaussian of ``course_sigma_deg``."""
    step_m: float = 12.0
    max_step_s: float = 3.0
    max_candidates: int = 16
    """Ways kept per step (nearest first, the nearest ``segs_per_way`` segments of each); each segment
    gives one or two directed states."""
    segs_per_way: int = 1
    """Segments kept per way (nearest first). With 1, at a bend of a way the nearest segment can be the
    one before the bend, whose bearing disagrees with the course (branch s9-route). The shipped value
    (2) is ``route.segs_per_way`` in configs/default.yaml."""
    uturn_cost: float = 6.0
    """Log-probability cost of turning back on the same road."""
    max_gap_s: float = 30.0
    """A position gap longer than this restarts the model..."""
    gyro_max_gap_s: float = 120.0
    """...or longer than this while the gyro's heading is anchored: map-aided dead reckoning (the
    odometer along the road, the heading choosing the way at each node) keeps the place through
    a long tunnel or an urban canyon. Its along-road error grows with the speed's scale error (1% of
    the distance driven)."""
    max_speed_mps: float = 70.0
    """Bounds the route search when speed is unknown."""
    prune: float = 25.0
    """States this far (log-probability) below the best are dropped."""
    along_q: float = 0.05
    """Along the road, each state's place is the predecessor's moved on by the distance travelled,
    fused with the fix's projection (1-D Kalman): the prediction's variance grows by this many m^2
    per metre travelled (0: no fusion, the place is the fix's projection)."""
    along_r_factor: float = 1.0
    """The projection's variance is ``(sigma_m * ...)^2`` times this (coloured GNSS noise repeats)."""
    turn_cost: float = 0.0
    """Log-probability cost per 90 deg of turning where the route passes a node that offers a choice
    (a junction: more than one way on); going straight on costs nothing (a turn prior, as in
    Valhalla's Meili ``turn_penalty_factor``). 0: off."""
    turn_speed_mps: float = 0.0
    """With > 0, the turn cost scales with the lowest speed since the last step over this speed,
    squared (lateral acceleration v^2/r: a sharp turn at speed is unlikely, a slow one cheap),
    within 0.25x..4x; 0: the angle alone."""
    minor_cost: float = 0.0
    """Log-probability cost of a route that leaves a road of another class for one of the
    ``minor_classes`` (driveways, car-park aisles, ...: seldom entered from the road). 0: off."""
    minor_classes: tuple[str, ...] = ("service",)
    turn_fix_sigma_m: float = 0.0
    """With a GNSS course: where the route into a candidate turns by at least ``turn_fix_min_deg`` at
    a node, the car was at that node when its course swung past the middle of the turn; the
    candidate's place on its edge is then the distance travelled since (by speed), fused into the
    place with this 1-sigma (m). 0: off."""
    turn_fix_min_deg: float = 40.0
    turn_fix_agree_deg: float = 20.0
    """...only when the course was within this of the edge in before the swing and is within it of the
    edge out now (both legs of the turn seen: not a bend of a curving junction's other edges)."""
    turn_fix_window_s: float = 6.0
    """How far back the courses are kept to find the moment of a turn."""
    hold_speed_mps: float = 0.0
    """Zero-velocity hold: while the odometry's speed is known and below this (m/s) the car stands, so
    no Viterbi step is taken and no fix is fused into the place (the standing fixes carry only the
    wandering GNSS error); on pulling away the match goes on from the held state, moved on by the
    odometer (standing adds 0). Unknown speed: no hold. 0: off. The shipped value is
    ``route.hold_speed_mps`` in configs/default.yaml."""
    stand_rescore_s: float = 0.0
    """While held (``hold_speed_mps``): every this many seconds of standing, the held states are
    re-scored (no new candidates, no transition, 0 m travelled) with the emission of the mean of the
    standing fixes since the last re-score (the GNSS error is coloured: about one independent
    measurement per its time constant, so each fix is used once, in one interval's mean), with the
    step's emission (the distance to the segment the state's place is on, ``sigma_m``), and the best
    is picked again (the lag's path from it too). A match that was wrong when the car stopped (the
    next way past a junction, a side road) need not be held through the whole wait. 0: off. The
    shipped value is ``route.stand_rescore_s`` in configs/default.yaml."""
    gyro_sigma_deg: float = 20.0
    """With a yaw rate (``Fix.yaw_rate_dps``) and no GNSS heading: the heading dead-reckoned from it and
    anchored to the matched road (:mod:`vehicle_assist.route.heading`) is used as a course, with this
    1-sigma, in the emission and for the turn fix, from ``gyro_min_speed_mps`` (a gyro needs no speed,
    so turns from standstill and in GNSS gaps are seen). 0: the yaw rate is ignored."""
    gyro_min_speed_mps: float = 1.0
    lag_s: float = 0.0
    """Fixed-lag smoothing (:meth:`Matcher.take_smoothed`): a fix's place is decided on the best
    path through the Viterbi steps of the next ``lag_s`` seconds (0: filtering only)."""


@dataclass(frozen=True)
class Match:
    """The matched place at one fix."""

    edge: int
    offset_m: float
    """Distance along the edge from its start node."""
    distance_m: float
    """Fix to road at the last Viterbi step (metres)."""
    stepped: bool
    """True when this fix ran a Viterbi step (else the place was carried forward)."""


@dataclass(frozen=True)
class _Step:
    """One Viterbi step kept for the fixed lag."""

    no: int
    t: float
    odo: float
    states: list[tuple[int, float, float]]
    back: list[int]
    pred: list[int]
    """Index of each state's best predecessor in the previous step (-1: none)."""
    best: int


class Matcher:
    """Online HMM map matcher over one :class:`RoadMap`; call :meth:`update` per fix, in time order."""

    _AHEAD_STEPS = 8
    """A lagged fix's place is looked for on the smoothed path up to this many steps past its own."""

    def __init__(self, rmap: RoadMap, settings: MatchSettings | None = None) -> None:
        self.rmap = rmap
        self.s = settings or MatchSettings()
        self._gyro = GyroHeading()  # not reset by a position gap: the yaw rate goes on
        self.reset()

    def reset(self) -> None:
        if hasattr(self, "_hist"):
            self._break()  # what the lag still holds is decided on the steps so far
        else:
            self._hist: deque[_Step] = deque()
            self._pending: deque[tuple[float, int | None, float]] = deque()  # (t, base step, odometer)
            self._ready: list[Match | None] = []
            self._step_no = -1
        self._pred: list[int] = []
        self._states: list[tuple[int, float, float]] = []  # (edge, offset, emission distance)
        self._var: list[float] = []  # variance of each state's offset (m^2)
        self._back: list[int] = []
        self._scores = np.zeros(0)
        self._last_step_t: float | None = None
        self._last_step_ll: tuple[float, float] | None = None
        self._odo = 0.0  # metres travelled (by speed) since the last step
        self._vmin = math.inf  # lowest speed since the last step
        self._last_t: float | None = None
        self._last_speed: float | None = None
        self._best: Match | None = None
        self._carried = 0.0
        self._recent: deque[tuple[float, float, float, float]] = deque()  # (t, x, y, odometer)
        self._odometer = 0.0
        self._courses: deque[tuple[float, float, float]] = deque()  # (t, odometer, course) for the turn fix
        self._heading: tuple[float, float] | None = None  # (course deg, sigma) at the current fix
        self._stand_xy: list[tuple[float, float, float]] = []  # (t, x, y) standing fixes not yet used

    # -- public --------------------------------------------------------------------------------

    def update(self, fix: Fix) -> Match | None:
        """The matched place at this fix, or None (no position, or no road within reach): the
        filtered answer, decided on this fix and the ones before it. With ``lag_s`` > 0 the smoothed
        answers come out of :meth:`take_smoothed`."""
        m = self._update(fix)
        if self.s.lag_s > 0:
            self._pending.append((fix.t_s, self._step_no if m is not None else None, self._odometer))
            self._finalize(force=False, now=fix.t_s)
        return m

    @property
    def yaw_mirrored(self) -> bool:
        """The yaw rate's sign looks mirrored (:meth:`GyroHeading.check_sign`): its heading is withheld."""
        return self._gyro.mirrored

    @property
    def yaw_sign_votes(self) -> tuple[int, int]:
        """Turns whose yaw rate agreed with the fixes' course, and turns where it turned the other way."""
        return self._gyro.sign_votes

    def sense(self, t_s: float, speed_mps: float | None, yaw_rate_dps: float | None = None) -> None:
        """A speed and yaw-rate reading with no new position: CAN and an IMU run faster than a GNSS
        receiver (often 1 Hz), so the odometer and the gyro's heading are integrated at their own rate
        between fixes, not sampled at the fixes. Out of order (before the last reading): ignored."""
        if self._last_t is not None and t_s < self._last_t:
            return
        self._dead_reckon(t_s, speed_mps, yaw_rate_dps)

    @property
    def odometer_m(self) -> float | None:
        """Metres travelled (the speed integral) since the matcher (re)started; None while no speed
        has been known since then."""
        return self._odometer if self._last_speed is not None else None

    @property
    def heading(self) -> tuple[float, float] | None:
        """The course at the last fix and its 1-sigma (deg): the GNSS one, else the gyro's; or None."""
        return self._heading

    def take_smoothed(self) -> list[Match | None]:
        """The fixed-lag answers decided since the last call, one per fix, in fix order: a fix's
        place on the best Viterbi path through the steps up to ``lag_s`` seconds after it."""
        out, self._ready = self._ready, []
        return out

    def finish(self) -> list[Match | None]:
        """End of the track: every answer still held back by the lag (decided on the steps so far)."""
        self._break()
        return self.take_smoothed()

    def _update(self, fix: Fix) -> Match | None:
        if self._last_t is not None and fix.t_s < self._last_t:
            self.reset()  # time went backwards: a new track
            self._gyro = GyroHeading()
        speed = self._dead_reckon(fix.t_s, fix.speed_mps, fix.yaw_rate_dps)
        self._heading = self._heading_of(fix, speed)
        if self.s.turn_fix_sigma_m > 0:
            self._remember_course(fix)
        max_gap = self.s.max_gap_s
        if self.s.gyro_sigma_deg > 0 and self._gyro.course() is not None:
            max_gap = max(max_gap, self.s.gyro_max_gap_s)
        if fix.lat is None or fix.lon is None:
            if self._last_step_t is not None and fix.t_s - self._last_step_t > max_gap:
                self.reset()
                return None
            return self._carry()
        if self._last_step_t is not None and fix.t_s - self._last_step_t > max_gap:
            self.reset()
            self._last_t = fix.t_s
        self._remember(fix)
        if self.s.gyro_sigma_deg > 0 and fix.yaw_rate_dps is not None:
            self._gyro.check_sign(fix.t_s, self.course_deg())
        if (self.s.hold_speed_mps > 0 and speed is not None and speed < self.s.hold_speed_mps
                and self._states and self._last_step_t is not None):
            # standing still: hold the match (the step clock waits too, so a long stop is no gap)
            self._last_step_t = fix.t_s
            if self.s.stand_rescore_s > 0:
                self._stand(fix)
            return self._carry()
        self._stand_xy = []  # pulled away: the standing fixes of an unfinished interval are not used
        due = (self._last_step_t is None or not self._states
               or fix.t_s - self._last_step_t >= self.s.max_step_s
               or self._moved(fix) >= self.s.step_m)
        if not due:
            return self._carry()
        return self._step(fix)

    # -- internals -----------------------------------------------------------------------------

    def _stand(self, fix: Fix) -> None:
        """A standing fix: kept; once they span ``stand_rescore_s``, their mean re-scores the held states."""
        xy = self.rmap.project(fix.lat, fix.lon)
        self._stand_xy.append((fix.t_s, float(xy[0]), float(xy[1])))
        if fix.t_s - self._stand_xy[0][0] >= self.s.stand_rescore_s:
            arr = np.asarray(self._stand_xy)
            self._stand_xy = []
            if np.ptp(arr[:, 1:], axis=0).max() > 0.01:  # a receiver's static hold repeats one fix: nothing new
                self._rescore(arr[:, 1:].mean(axis=0))

    def _rescore(self, xy: np.ndarray) -> None:
        """Add the emission of the position ``xy`` to each held state's score (0 m travelled: no
        transition) and pick the best again."""
        if not self._states:
            return
        rmap, s = self.rmap, self.s
        # the distance to the segment each state's place is on now (as the step's emission measures it)
        held = [self._place(e, off + self._carried, 0.0, back).edge
                for (e, off, _), back in zip(self._states, self._back)]
        dist, _ = rmap.project_on_segments(xy, np.asarray([int(rmap.edge_seg[e]) for e in held]))
        scores = self._scores - 0.5 * (dist / s.sigma_m) ** 2
        self._scores = scores - scores.max()
        b = int(np.argmax(self._scores))
        e, off, d = self._states[b]
        self._best = self._place(e, off, d, self._back[b])
        if s.lag_s > 0 and self._hist and self._hist[-1].no == self._step_no and self._hist[-1].best != b:
            self._hist[-1] = replace(self._hist[-1], best=b)

    def _dead_reckon(self, t_s: float, speed_mps: float | None, yaw_rate_dps: float | None) -> float | None:
        """Move the odometer (trapezoid rule on the speed) and the gyro's heading on to ``t_s``; the
        speed now (the last known one when this reading has none)."""
        speed = speed_mps if speed_mps is not None else self._last_speed
        if speed is not None and self._last_t is not None:
            prev = self._last_speed if self._last_speed is not None else speed
            travelled = 0.5 * (prev + speed) * (t_s - self._last_t)
            self._odo += travelled
            self._carried += travelled
            self._odometer += travelled
        self._last_t, self._last_speed = t_s, speed
        if speed is not None:
            self._vmin = min(self._vmin, speed)
        if self.s.gyro_sigma_deg > 0:
            self._gyro.update(t_s, yaw_rate_dps, speed, self._odometer)
        return speed

    def _moved(self, fix: Fix) -> float:
        if self._last_speed is not None:
            return self._odo
        lat0, lon0 = self._last_step_ll  # type: ignore[misc]
        return float(haversine_m(lat0, lon0, fix.lat, fix.lon))

    def _remember(self, fix: Fix) -> None:
        """Keep the fixes of the course window (a gap longer than the window empties it)."""
        if self.s.course_window_s <= 0:
            return
        xy = self.rmap.project(fix.lat, fix.lon)
        rec = self._recent
        if rec and fix.t_s - rec[-1][0] > self.s.course_window_s:
            rec.clear()
        rec.append((fix.t_s, float(xy[0]), float(xy[1]), self._odometer))
        window, keep = self.s.course_window_s, self.s.course_min_fixes
        while rec and (fix.t_s - rec[0][0] > 3 * window or (fix.t_s - rec[0][0] > window and len(rec) > keep)):
            rec.popleft()

    def _gnss_heading(self, fix: Fix) -> float | None:
        """The fix's GNSS heading when the car moves fast enough for it to mean something, else None."""
        if fix.heading_deg is not None and fix.speed_mps is not None and fix.speed_mps >= self.s.heading_min_speed_mps:
            return float(fix.heading_deg)
        return None

    def _heading_of(self, fix: Fix, speed: float | None) -> tuple[float, float] | None:
        """The course at this fix and its 1-sigma: the GNSS heading when the car moves fast enough for
        one, else the gyro's (anchored) heading when the car moves; else None."""
        s = self.s
        gnss = self._gnss_heading(fix)
        if gnss is not None:
            return gnss, s.heading_sigma_deg
        gyro = self._gyro.course() if s.gyro_sigma_deg > 0 and fix.yaw_rate_dps is not None else None
        if gyro is not None and (speed is None or speed >= s.gyro_min_speed_mps):
            return gyro, s.gyro_sigma_deg
        return None

    def _remember_course(self, fix: Fix) -> None:
        """Keep the courses of the last ``turn_fix_window_s`` (a fix without one breaks the run)."""
        rec = self._courses
        if self._heading is None:
            rec.clear()
            return
        rec.append((fix.t_s, self._odometer, self._heading[0]))
        while rec and fix.t_s - rec[0][0] > self.s.turn_fix_window_s:
            rec.popleft()

    def turn_place(self, e_in: int, e_out: int) -> float | None:
        """Distance travelled (m) since the GNSS course swung past the middle of the turn from edge
        ``e_in`` onto ``e_out`` (the car was then at their node), or None: the turn is under
        ``turn_fix_min_deg``, or the kept courses do not show it (not turned yet, or before them)."""
        rmap = self.rmap
        b_in, b_out = rmap.edge_bearing(e_in), rmap.edge_bearing(e_out)
        if bearing_diff_deg(b_out, b_in) < self.s.turn_fix_min_deg:
            return None
        rec, agree = self._courses, self.s.turn_fix_agree_deg
        if (len(rec) < 2 or bearing_diff_deg(rec[-1][2], b_out) >= bearing_diff_deg(rec[-1][2], b_in)
                or bearing_diff_deg(rec[-1][2], b_out) > agree):
            return None
        for k in range(len(rec) - 2, -1, -1):
            c = rec[k][2]
            if bearing_diff_deg(c, b_in) < bearing_diff_deg(c, b_out):
                if not any(bearing_diff_deg(rec[j][2], b_in) <= agree for j in range(k, -1, -1)):
                    return None
                return self._odometer - 0.5 * (rec[k][1] + rec[k + 1][1])
        return None

    def course_deg(self) -> float | None:
        """Course over ground (compass deg) from the recent fixes: the direction of a straight line
        fitted to x(t) and y(t) over the window, when the car moved far enough for it to mean
        something (by speed when known, else by the fitted displacement); else None."""
        rec = self._recent
        if len(rec) < self.s.course_min_fixes:
            return None
        arr = np.asarray(rec)
        t = arr[:, 0] - arr[:, 0].mean()
        tt = float(t @ t)
        if tt <= 0:
            return None
        vx, vy = float(t @ arr[:, 1]) / tt, float(t @ arr[:, 2]) / tt
        span = float(arr[-1, 0] - arr[0, 0])
        moved = float(arr[-1, 3] - arr[0, 3]) if self._last_speed is not None else math.hypot(vx, vy) * span
        if moved < self.s.course_min_m or span < 0.5 * self.s.course_window_s:
            return None
        if self._last_speed is not None and self._last_speed < self.s.heading_min_speed_mps:
            return None
        return math.degrees(math.atan2(vx, vy)) % 360.0

    def _carry(self) -> Match | None:
        """The best place of the last step, moved on by the distance travelled since."""
        if self._best is None:
            return None
        b = self._best
        return self._moved_on(b.edge, b.offset_m + self._carried, b.distance_m, False)

    def _moved_on(self, edge: int, offset: float, distance: float, stepped: bool, odo: float | None = None) -> Match:
        """A place ``offset`` metres from an edge's start, past its end along the likeliest continuation
        (with an anchored gyro, the way on its heading took; ``odo``: the odometer at the place, default now)."""
        odo = self._odometer if odo is None else odo
        while offset > float(self.rmap.edge_len[edge]):
            heading = None
            if self.s.gyro_sigma_deg > 0:  # None before the gyro's first anchor
                heading = self._gyro.course_after(odo - (offset - float(self.rmap.edge_len[edge])))
            nxt = next_edge(self.rmap, edge, heading)
            if nxt is None:
                return Match(edge, float(self.rmap.edge_len[edge]), distance, stepped)
            offset -= float(self.rmap.edge_len[edge])
            edge = nxt
        return Match(edge, offset, distance, stepped)

    def _candidates(self, fix: Fix) -> tuple[list[tuple[int, float, float]], np.ndarray]:
        rmap, s = self.rmap, self.s
        xy = rmap.project(fix.lat, fix.lon)
        segs = rmap.segments_near(xy, s.radius_m)
        if len(segs) == 0:
            return [], np.zeros(0)
        dist, frac = rmap.project_on_segments(xy, segs)
        keep = dist <= s.radius_m
        segs, dist, frac = segs[keep], dist[keep], frac[keep]
        # nearest segment of each way (a way's other segments are the same road, farther off)
        order, ways_seen = [], {}
        seg_way = rmap.a["seg_way"]
        for i in np.argsort(dist):
            w = int(seg_way[segs[i]])
            got = ways_seen.get(w, 0)
            if got < s.segs_per_way:
                if got == 0 and len(ways_seen) >= s.max_candidates:
                    continue
                ways_seen[w] = got + 1
                order.append(i)
        states, emis = [], []
        heading = self._heading
        course = None if heading is not None or fix.heading_deg is not None else self.course_deg()
        seg_len = rmap.a["seg_len"]
        for i in order:
            seg = int(segs[i])
            for e in self._edges_of(seg):
                along = rmap.edge_dir[e] > 0
                off = float(frac[i] if along else 1.0 - frac[i]) * float(seg_len[seg])
                lp = -0.5 * (float(dist[i]) / s.sigma_m) ** 2
                if heading is not None:
                    diff = bearing_diff_deg(rmap.edge_bearing(e), heading[0])
                    lp += -0.5 * (diff / heading[1]) ** 2
                elif course is not None:
                    diff = bearing_diff_deg(rmap.edge_bearing(e), course)
                    lp += -0.5 * (max(0.0, diff - s.course_free_deg) / s.course_sigma_deg) ** 2
                states.append((e, off, float(dist[i])))
                emis.append(lp)
        return states, np.asarray(emis)

    def _edges_of(self, seg: int) -> list[int]:
        if not hasattr(self, "_seg_edges"):
            table: dict[int, list[int]] = {}
            for e, sg in enumerate(self.rmap.edge_seg):
                table.setdefault(int(sg), []).append(e)
            self._seg_edges = table
        return self._seg_edges.get(seg, [])

    def _step(self, fix: Fix) -> Match | None:
        states, emis = self._candidates(fix)
        if self._last_speed is not None and self._last_step_t is not None:
            travelled = self._odo
        elif self._last_step_ll is not None:
            travelled = float(haversine_m(self._last_step_ll[0], self._last_step_ll[1], fix.lat, fix.lon))
        else:
            travelled = 0.0
        elapsed = 0.0 if self._last_step_t is None else fix.t_s - self._last_step_t
        self._last_step_t, self._last_step_ll = fix.t_s, (fix.lat, fix.lon)
        self._odo = 0.0
        self._carried = 0.0
        vmin, self._vmin = self._vmin, (self._last_speed if self._last_speed is not None else math.inf)
        if not states:
            self._states, self._scores, self._best = [], np.zeros(0), None
            self._var, self._back, self._pred = [], [], []
            if self.s.lag_s > 0:
                self._break()
            return None
        fused = None
        pred = None
        if len(self._states):
            bound = travelled + 2 * self.s.radius_m + 20.0
            if self._last_speed is None:
                bound = max(bound, min(self.s.max_speed_mps * elapsed, 2000.0))
            trans, fused, pred = self._transition(states, travelled, bound, vmin)
            scores = trans + emis
            if not np.isfinite(scores).any():  # no route joins the last step to this one: restart
                scores, fused, pred = emis.copy(), None, None
        else:
            scores = emis.copy()
        if fused is None:
            fused = [(off, self.s.sigma_m ** 2 * self.s.along_r_factor, -1) for _, off, _ in states]
        if pred is None:
            pred = [-1] * len(states)
            if self.s.lag_s > 0:
                self._break()  # a new chain: what the lag holds is decided on the old one
        scores = scores - scores.max()
        keep = scores >= -self.s.prune
        self._states = [(e, f[0], d) for (e, _, d), f, k in zip(states, fused, keep) if k]
        self._var = [f[1] for f, k in zip(fused, keep) if k]
        self._back = [f[2] for f, k in zip(fused, keep) if k]
        self._pred = [p for p, k in zip(pred, keep) if k]
        self._scores = scores[keep]
        b = int(np.argmax(self._scores))
        e, off, d = self._states[b]
        self._best = self._place(e, off, d, self._back[b])
        if self.s.gyro_sigma_deg > 0 and fix.yaw_rate_dps is not None:
            self._anchor_gyro(fix)
        if self.s.lag_s > 0:
            self._step_no += 1
            self._hist.append(_Step(self._step_no, fix.t_s, self._odometer, list(self._states),
                                    list(self._back), list(self._pred), b))
        return self._best

    def _anchor_gyro(self, fix: Fix) -> None:
        """Anchor the gyro's heading on the matched road (:meth:`GyroHeading.anchor_to`), checked
        against a course that does not come from the gyro or the map: the GNSS one, else the fixes'
        own."""
        gnss = self._gnss_heading(fix)
        course = gnss if gnss is not None else self.course_deg()
        self._gyro.anchor_to(self.rmap.edge_bearing(self._best.edge), course)

    # -- fixed lag -----------------------------------------------------------------------------

    def _finalize(self, force: bool, now: float | None = None) -> None:
        """Decide the held fixes whose lag has passed (all of them when ``force``) on the best path
        back from the latest step. A fix is held ``lag_s`` after it until a step has come (at most
        ``lag_s`` + ``max_step_s``: in a position gap no step comes, and it is decided on the steps so far)."""
        pend, hist = self._pending, self._hist
        path: dict[int, int] | None = None
        while pend:
            t, base, odo = pend[0]
            if base is None:
                self._ready.append(None)
                pend.popleft()
                continue
            last = hist[-1]
            waited = now is not None and now - t >= self.s.lag_s + self.s.max_step_s
            if not force and not waited and not (last.no > base and last.t >= t + self.s.lag_s):
                break
            if path is None:
                path = self._best_path()
            self._ready.append(self._smoothed_place(base, odo, path))
            pend.popleft()
        # steps no held fix needs any more (keep the latest: the next fix's base)
        keep_from = min((b for _, b, _ in pend if b is not None), default=hist[-1].no if hist else 0)
        while len(hist) > 1 and hist[0].no < keep_from:
            hist.popleft()

    def _break(self) -> None:
        """The chain of steps ends (restart, no road, end of track): decide everything held."""
        if not hasattr(self, "_hist"):
            return
        if self._hist or self._pending:
            if not self._hist:
                self._pending = deque((t, None, o) for t, _, o in self._pending)
            self._finalize(force=True)
        self._hist.clear()

    def _best_path(self) -> dict[int, int]:
        """Step number -> state index on the best path back from the latest step's best state."""
        hist = self._hist
        path: dict[int, int] = {}
        j = hist[-1].best
        for st in reversed(hist):
            if j < 0:
                j = st.best  # no predecessor recorded: that step's own best
            path[st.no] = j
            j = st.pred[j]
        return path

    def _smoothed_place(self, base: int, odo: float, path: dict[int, int]) -> Match:
        """A held fix's place on the smoothed path: between the smoothed states of its step and the
        next one, along the route that joins them, at the distance travelled since its step (the
        two states' places interpolated by that distance: each is a fused estimate)."""
        first = self._hist[0].no
        st = self._hist[base - first]
        j = path[base]
        e, off, d = st.states[j]
        since = odo - st.odo
        stepped = since == 0.0
        nxt = base + 1 - first
        if nxt >= len(self._hist):
            m = self._place(e, off, d, st.back[j])
            return self._moved_on(m.edge, m.offset_m + since, d, stepped, odo)
        sn = self._hist[nxt]
        en, offn, _ = sn.states[path[base + 1]]
        # the edges of the smoothed path from this step on, a few steps past the next (as far as the
        # lag has seen: with the whole track as the lag, not all of it for every fix)
        chain, at_n = [e], 0
        for k in range(nxt, min(len(self._hist), nxt + self._AHEAD_STEPS)):
            sk = self._hist[k]
            ek = sk.states[path[sk.no]][0]
            if ek != chain[-1]:
                link = self.route_edges(chain[-1], ek, sk.odo - self._hist[k - 1].odo)
                if link is None:
                    break
                chain.extend(link[1:])
            if k == nxt:
                at_n = len(chain) - 1
        if chain[at_n] != en:
            m = self._place(e, off, d, st.back[j])
            return self._moved_on(m.edge, m.offset_m + since, d, stepped, odo)
        lens = [float(self.rmap.edge_len[c]) for c in chain]
        start_n = sum(lens[:at_n])
        span = sn.odo - st.odo
        w = since / span if span > 0 else 0.0
        along = (1.0 - w) * (off + since) + w * (start_n + offn - (span - since))
        if along < 0.0:
            if st.back[j] >= 0:
                b = st.back[j]
                return Match(b, max(0.0, float(self.rmap.edge_len[b]) + along), d, stepped)
            return Match(e, 0.0, d, stepped)
        for c, ln in zip(chain[:-1], lens[:-1]):
            if along <= ln:
                return Match(c, along, d, stepped)
            along -= ln
        return self._moved_on(chain[-1], along, d, stepped, odo)  # past what the lag has seen: guessed on

    def route_edges(self, e: int, en: int, dist: float) -> list[int] | None:
        """The edges from edge ``e`` to edge ``en`` along the shortest route within about ``dist``
        metres (both included), or None."""
        if e == en:
            return [e]
        key = (e, en)
        cache = self.__dict__.setdefault("_route_cache", {})
        if key in cache:
            return cache[key]
        if len(cache) > 4096:
            cache.clear()
        src, dst = int(self.rmap.edge_to[e]), int(self.rmap.edge_from[en])
        if src == dst:
            out: list[int] | None = [e, en]
        else:
            reach, via = self._dijkstra(src, max(dist, 0.0) + 2 * self.s.radius_m + 20.0)
            if dst not in reach:
                out = None
            else:
                mids, node = [], dst
                while node != src:
                    k = via[node]
                    mids.append(k)
                    node = int(self.rmap.edge_from[k])
                out = [e, *reversed(mids), en]
        cache[key] = out
        return out

    def _place(self, edge: int, offset: float, distance: float, back: int) -> Match:
        """A state's place as a :class:`Match` on a real edge: a fused offset before the edge's start
        lies on the edge the route came in by (``back``), one past its end is carried on."""
        if offset < 0.0:
            if back >= 0:
                return Match(back, max(0.0, float(self.rmap.edge_len[back]) + offset), distance, True)
            return Match(edge, 0.0, distance, True)
        return self._moved_on(edge, offset, distance, True)

    def _transition(self, states: list[tuple[int, float, float]], travelled: float,
                    bound: float, vmin: float = math.inf) -> tuple[np.ndarray, list[tuple[float, float, int]], list[int]]:
        """Best score of reaching each candidate, and its place along the road fused from the best
        predecessor's place moved on by the distance travelled and the fix's projection (a 1-D
        Kalman update: the speed integral is steadier than GNSS along the road): (offset, variance,
        the edge the route entered the candidate's edge from, or -1)."""
        rmap, s = self.rmap, self.s
        out = np.full(len(states), -np.inf)
        r_var = s.sigma_m ** 2 * s.along_r_factor
        fused: list[tuple[float, float, int]] = [(off, r_var, -1) for _, off, _ in states]
        preds = [-1] * len(states)
        dists: dict[int, tuple[dict[int, float], dict[int, int]]] = {}
        prev_var = self._var or [r_var] * len(self._states)
        chains: dict[tuple[int, int], tuple[int, int, float]] = {}
        extra: dict[tuple[int, int], float] = {}
        minor = self._minor_edges()
        turn_scale = 1.0
        if s.turn_speed_mps > 0 and math.isfinite(vmin):
            turn_scale = min(4.0, max(0.25, (vmin / s.turn_speed_mps) ** 2))
        prev_back = self._back or [-1] * len(self._states)
        turn_fix = s.turn_fix_sigma_m > 0 and len(self._courses) >= 2
        turn_places: dict[tuple[int, int], float | None] = {}
        for i, ((pe, poff, _), pscore, pvar, pback) in enumerate(zip(self._states, self._scores, prev_var, prev_back)):
            plen = float(rmap.edge_len[pe])
            to_end = plen - poff
            pnode = int(rmap.edge_to[pe])
            if pnode not in dists:
                dists[pnode] = self._dijkstra(pnode, bound)
            reach, via = dists[pnode]
            for j, (ce, coff, _) in enumerate(states):
                cost = 0.0
                back = -1
                fuse = True
                if ce == pe:
                    route = coff - poff
                elif ce == rmap.edge_rev[pe]:
                    route = abs((plen - coff) - poff)
                    cost = s.uturn_cost
                    fuse = False
                else:
                    cfrom = int(rmap.edge_from[ce])
                    route = math.inf
                    if cfrom in reach:
                        route = to_end + reach[cfrom] + coff
                        back = pe if cfrom == pnode else via.get(cfrom, -1)
                        key = (pe, ce)
                        got = extra.get(key)
                        if got is None:
                            got = extra[key] = self._route_cost(pe, ce, pnode, cfrom, via, chains, minor, turn_scale)
                        cost = got
                    if int(rmap.edge_to[ce]) == int(rmap.edge_from[pe]) and (
                            ce == pback or rmap.way_of_edge(ce) == rmap.way_of_edge(pe)):
                        # just behind, on the previous edge: the road's own, or the one the route came in by
                        # (not any road ending there: that step back would skip the turn into it for free)
                        b_route = -(poff + float(rmap.edge_len[ce]) - coff)
                        if abs(b_route - travelled) < abs(route - travelled):
                            route, back, cost = b_route, -1, 0.0
                    if not math.isfinite(route):
                        continue
                lp = pscore - abs(route - travelled) / s.beta_m - cost
                if lp > out[j]:
                    out[j] = lp
                    preds[j] = i
                    if fuse and s.along_q > 0:
                        pred = coff + (travelled - route)
                        pv = pvar + s.along_q * max(travelled, 0.0)
                        k = pv / (pv + r_var)
                        x, v = pred + k * (coff - pred), pv * r_var / (pv + r_var)
                        if turn_fix and back >= 0:  # the GNSS course timed the turn onto this edge
                            if (back, ce) not in turn_places:
                                turn_places[(back, ce)] = self.turn_place(back, ce)
                            z = turn_places[(back, ce)]
                            if z is not None:
                                tv = s.turn_fix_sigma_m ** 2
                                x, v = x + v / (v + tv) * (z - x), v * tv / (v + tv)
                        fused[j] = (x, v, back)
                    else:
                        fused[j] = (coff, r_var, back)
        return out, fused, preds

    def _minor_edges(self) -> np.ndarray:
        """Per edge: whether its way's class is one of ``minor_classes``."""
        m = self.__dict__.get("_minor")
        if m is None:
            rmap = self.rmap
            cls = rmap.a["way_class"][rmap.a["seg_way"][rmap.edge_seg]]
            m = np.isin(cls, list(self.s.minor_classes))
            self._minor = m
        return m

    def _turn(self, e1: int, e2: int) -> float:
        """Turn cost from edge ``e1`` into ``e2`` at their shared node: ``turn_cost`` per 90 deg, only
        where the node offers more than one way on (a bend of a road costs nothing)."""
        tab = self.rmap.__dict__.get("_turn_tab")  # per map: edge bearings, and whether its end node is a junction
        if tab is None:
            rmap = self.rmap
            xy = rmap.a["node_xy"]
            d = xy[rmap.edge_to] - xy[rmap.edge_from]
            bearing = np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360.0
            choice = np.zeros(len(rmap.edge_to), dtype=bool)
            for e in range(len(rmap.edge_to)):
                v = int(rmap.edge_to[e])
                outs = rmap.out_edges[rmap.out_ptr[v]:rmap.out_ptr[v + 1]]
                choice[e] = sum(1 for o in outs if o != rmap.edge_rev[e] and rmap.edge_to[o] != rmap.edge_from[e]) > 1
            tab = self.rmap.__dict__["_turn_tab"] = (bearing.tolist(), choice.tolist())
        bearing, choice = tab
        if not choice[e1]:
            return 0.0
        diff = abs(bearing[e2] - bearing[e1]) % 360.0
        return self.s.turn_cost * min(diff, 360.0 - diff) / 90.0

    def _route_cost(self, pe: int, ce: int, pnode: int, cfrom: int, via: dict[int, int],
                    chains: dict[tuple[int, int], tuple[int, int, float]], minor: np.ndarray,
                    turn_scale: float) -> float:
        """Log-probability cost of the route from edge ``pe`` through the shortest-route tree ``via``
        (from ``pnode``) to edge ``ce`` (which leaves ``cfrom``): a U-turn (back the way it came),
        its turns at junctions (``turn_cost``, times ``turn_scale``), entering a minor road."""
        s = self.s
        cost = 0.0
        if cfrom == pnode:
            turns = self._turn(pe, ce) if s.turn_cost > 0 else 0.0
        else:
            got = chains.get((pnode, cfrom))
            if got is None:
                chain = [via[cfrom]]
                while int(self.rmap.edge_from[chain[-1]]) != pnode:
                    chain.append(via[int(self.rmap.edge_from[chain[-1]])])
                chain.reverse()
                inner = sum(self._turn(x, y) for x, y in zip(chain[:-1], chain[1:])) if s.turn_cost > 0 else 0.0
                got = chains[(pnode, cfrom)] = (chain[0], chain[-1], inner)
            first, last, inner = got
            if first == int(self.rmap.edge_rev[pe]):
                cost += s.uturn_cost  # back the way it came (a dead end's turn): a U-turn too
            if last == int(self.rmap.edge_rev[ce]):
                cost += s.uturn_cost  # out along a road and back on it to the candidate: a U-turn too
            turns = self._turn(pe, first) + inner + self._turn(last, ce) if s.turn_cost > 0 else 0.0
        cost += turn_scale * turns
        if s.minor_cost > 0 and minor[ce] and not minor[pe]:
            cost += s.minor_cost
        return cost

    def _dijkstra(self, source: int, bound: float) -> tuple[dict[int, float], dict[int, int]]:
        """Shortest driving distances from a node to every node within ``bound`` metres, and the
        edge each node is reached by."""
        rmap = self.rmap
        ptr, outs, to, length = rmap.out_ptr, rmap.out_edges, rmap.edge_to, rmap.edge_len
        best = {source: 0.0}
        via: dict[int, int] = {}
        heap = [(0.0, source)]
        while heap:
            d, u = heapq.heappop(heap)
            if d > best.get(u, math.inf):
                continue
            for k in range(ptr[u], ptr[u + 1]):
                e = outs[k]
                v = int(to[e])
                nd = d + float(length[e])
                if nd <= bound and nd < best.get(v, math.inf):
                    best[v] = nd
                    via[v] = int(e)
                    heapq.heappush(heap, (nd, v))
        return best, via
