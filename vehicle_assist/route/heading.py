"""Heading from the yaw rate (a gyro or the ESC's CAN yaw-rate signal), anchored to the matched road.

A yaw rate gives the change of heading, not the heading: integrated, it drifts with the sensor's
bias (an uncompensated MEMS gyro: a fraction of a degree per second). Two corrections, standard in
vehicle dead reckoning:

- Zero-rate update: while the car stands (speed known and below ``stand_mps``) the true yaw rate is 0,
  so what the gyro reads is its bias; a running mean of those readings is subtracted from then on.
- Map anchor: while the car has driven straight for ``straight_m`` (the integrated heading within
  ``straight_deg`` of a steady drift of at most ``drift_dps``: a bias not learnt yet) on a matched road whose bearing an independent course agrees with
  (the GNSS course, or the course fitted to the fixes), its heading is that road's bearing: a
  measurement of the offset between the integrated and the absolute heading. Both the match and a
  course fitted to a few seconds of coloured GNSS error can be wrong together (the match on the
  reverse edge of a two-way road while the fitted course flips), so one measurement is not trusted:
  the first anchor, and a move of it by more than ``agree_deg``, need ``consensus_n`` measurements
  over at least ``consensus_s`` that agree within ``agree_deg`` of their mean; a measurement within
  ``agree_deg`` of the anchor moves it ``anchor_gain`` of the way there, and its drift since the last
  one teaches the bias (``bias_anchor_gain``).

Mirrored sign: a yaw rate anticlockwise-positive (ISO 8855, as many CAN signals are) where this code
wants clockwise-positive turns every heading change the wrong way. Each turn of 60-120 deg that the
course fitted to the fixes shows (:meth:`GyroHeading.check_sign`, 3-15 s apart) is a vote: the
integrated heading turned the same way (right sign) or the other way (mirrored); after
``mirror_votes`` votes for mirrored, at least twice as many as for right, :attr:`GyroHeading.mirrored`
is set and the heading withheld (the matcher goes on without it; ``route match`` warns).

Until the first anchor there is no heading (only the change of it). A gap in the yaw rate longer
than ``max_gap_s`` drops the anchor (the heading lost is unknown).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

from vehicle_assist.route.map import bearing_diff_deg, wrap180


@dataclass(frozen=True)
class GyroSettings:
    stand_mps: float = 0.3
    bias_gain: float = 0.02
    """Share of the gap between a standing reading and the bias estimate taken per reading."""
    straight_m: float = 30.0
    straight_deg: float = 3.0
    """Straight: the heading within this of a steady drift over the last ``straight_m``..."""
    drift_dps: float = 1.5
    """...that drifts by at most this (deg/s): an unlearnt bias, or a gentle curve."""
    bias_anchor_gain: float = 0.3
    """Share of the bias an anchor measurement shows (its drift from an earlier measurement over the
    time between them) taken into the bias estimate..."""
    bias_min_s: float = 10.0
    """...measured over at least this long: a measurement is a few degrees off (the matched edge's
    bearing on a curve, noise), and over 2 s a 6-deg error reads as a 3 deg/s bias (seen with 1 Hz
    fixes: the learnt bias then turned the heading so fast that it could never anchor again)..."""
    bias_max_s: float = 60.0
    """...and at most this long (an older reference is replaced: the drift since may include turns the
    integration got wrong)."""
    anchor_gain: float = 0.3
    agree_deg: float = 30.0
    """The independent course must be this close to the road's bearing for a measurement; the
    measurements of a consensus this close to their mean."""
    consensus_n: int = 3
    consensus_s: float = 5.0
    consensus_keep_s: float = 30.0
    """Measurements older than this are dropped from a consensus."""
    max_gap_s: float = 2.5
    """No reading for longer than this drops the anchor. A 1 Hz source whose readings come a little
    late, or lose one, must not (the lane also feeds readings between fixes: :meth:`Matcher.sense`)."""
    max_rate_dps: float = 360.0
    """A reading beyond this (a full turn a second: no car yaws so fast), or not a number, is a glitch
    and counts as no reading."""
    mirror_votes: int = 3
    """Votes for a mirrored sign (at least twice those for the right one) that withhold the heading."""
    trail_m: float = 1000.0
    """How far back the heading is kept by distance (:meth:`GyroHeading.course_after`)."""
    turn_look_m: float = 8.0
    """A turn at a node is complete this far past it (:meth:`GyroHeading.course_after`)."""


class GyroHeading:
    """Integrates the yaw rate per fix; :meth:`course` is the absolute heading once anchored."""

    def __init__(self, settings: GyroSettings | None = None) -> None:
        self.s = settings or GyroSettings()
        self.bias = 0.0
        self.mirrored = False
        self._sign_votes = [0, 0]  # turns that said: right sign, mirrored
        self.reset()

    def reset(self) -> None:
        """Forget the heading (the bias estimate is the sensor's and stays)."""
        self.rel = 0.0
        self.anchor: float | None = None
        self._last: tuple[float, float] | None = None  # (t, yaw rate)
        self._hist: deque[tuple[float, float, float]] = deque()  # (odometer, t, rel) over the last straight_m
        self._trail: deque[tuple[float, float]] = deque()  # (odometer, rel) over the last trail_m
        self._votes: deque[tuple[float, float]] = deque()  # (t, measured anchor) not yet agreed on
        self._bias_ref: tuple[float, float] | None = None  # (t, anchor measurement) the bias's drift is measured from
        self._sign_ref: tuple[float, float, float] | None = None  # (t, fixes' course, rel) before a turn

    def update(self, t_s: float, yaw_dps: float | None, speed_mps: float | None, odometer_m: float) -> None:
        if yaw_dps is not None and not (math.isfinite(yaw_dps) and abs(yaw_dps) <= self.s.max_rate_dps):
            yaw_dps = None
        if yaw_dps is None:
            if self._last is not None and t_s - self._last[0] > self.s.max_gap_s:
                self.reset()
            return
        if self._last is not None:
            dt = t_s - self._last[0]
            if dt > self.s.max_gap_s or dt < 0:
                self.reset()
            else:
                self.rel += (0.5 * (yaw_dps + self._last[1]) - self.bias) * dt
        self._last = (t_s, yaw_dps)
        if speed_mps is not None and speed_mps < self.s.stand_mps:
            self.bias += self.s.bias_gain * (yaw_dps - self.bias)
        hist = self._hist
        if len(hist) >= 2 and hist[-1][0] == odometer_m == hist[-2][0]:
            hist.pop()  # standing: the first and the latest reading of the stop are enough (bounded at 100 Hz)
        hist.append((odometer_m, t_s, self.rel))
        while len(hist) > 2 and odometer_m - hist[1][0] >= self.s.straight_m:
            hist.popleft()
        trail = self._trail
        if not trail or odometer_m > trail[-1][0]:
            trail.append((odometer_m, self.rel))
        else:
            trail[-1] = (odometer_m, self.rel)
        while len(trail) > 2 and odometer_m - trail[1][0] >= self.s.trail_m:
            trail.popleft()

    @property
    def sign_votes(self) -> tuple[int, int]:
        """Turns whose integrated heading turned as the fixes' course did, and turns it turned the
        other way (:meth:`check_sign`)."""
        return self._sign_votes[0], self._sign_votes[1]

    def course(self) -> float | None:
        """Absolute heading (compass deg), or None before the first anchor or when the yaw rate's sign
        looks mirrored."""
        return None if self.anchor is None or self.mirrored else (self.rel + self.anchor) % 360.0

    def course_after(self, node_odometer_m: float) -> float | None:
        """Absolute heading ``turn_look_m`` after the car passed a node at this odometer reading (the
        latest heading when it has not gone that far yet), or None (no anchor, or before the trail)."""
        trail = self._trail
        if self.anchor is None or self.mirrored or not trail or node_odometer_m < trail[0][0]:
            return None
        at = min(node_odometer_m + self.s.turn_look_m, trail[-1][0])
        k = bisect.bisect_left(trail, (at, -math.inf))
        rel = trail[min(k, len(trail) - 1)][1]
        return (rel + self.anchor) % 360.0

    def straight(self) -> bool:
        """Driven at least ``straight_m`` with the heading within ``straight_deg`` all the way of a
        steady drift of at most ``drift_dps``."""
        hist = self._hist
        if len(hist) < 2 or hist[-1][0] - hist[0][0] < self.s.straight_m:
            return False
        (_, t0, r0), (_, t1, r1) = hist[0], hist[-1]
        if t1 <= t0:
            return False
        rate = (r1 - r0) / (t1 - t0)  # a bias not yet learnt turns the heading steadily
        if abs(rate) > self.s.drift_dps:
            return False
        return max(abs(r - r0 - rate * (t - t0)) for _, t, r in hist) < self.s.straight_deg

    def anchor_to(self, road_bearing: float, course: float | None) -> bool:
        """Anchor on a matched road's bearing when driving straight and ``course`` (independent of the
        gyro) agrees with it; returns whether it anchored."""
        s = self.s
        if self._last is None or not self.straight():
            return False
        if course is None or bearing_diff_deg(road_bearing, course) > s.agree_deg:
            return False
        meas = wrap180(road_bearing - self.rel)
        t = self._last[0]
        if self.anchor is not None and abs(wrap180(meas - self.anchor)) <= s.agree_deg:
            innovation = wrap180(meas - self.anchor)
            ref = self._bias_ref
            if ref is None or t - ref[0] > s.bias_max_s:
                self._bias_ref = (t, meas)
            elif t - ref[0] >= s.bias_min_s:
                # the integrated heading ran ahead of the road by -(meas - ref meas) since then
                self.bias -= s.bias_anchor_gain * wrap180(meas - ref[1]) / (t - ref[0])
                self._bias_ref = (t, meas)
            self.anchor = wrap180(self.anchor + s.anchor_gain * innovation)
            self._votes.clear()
            return True
        votes = self._votes
        votes.append((t, meas))
        while votes and t - votes[0][0] > s.consensus_keep_s:
            votes.popleft()
        agreed = consensus(list(votes), s.consensus_n, s.consensus_s, s.agree_deg)
        if agreed is None:
            return False
        self.anchor = agreed
        self._bias_ref = (t, agreed)
        votes.clear()
        return True

    def check_sign(self, t_s: float, course: float | None) -> None:
        """A vote on the yaw rate's sign from the course fitted to the fixes (independent of the gyro
        and the map): when it turned by 60-120 deg within 3-15 s, did the integrated heading turn the
        same way?"""
        if course is None or self._last is None:
            return
        ref = self._sign_ref
        if ref is None or t_s - ref[0] > 15.0:
            self._sign_ref = (t_s, course, self.rel)
            return
        turn = wrap180(course - ref[1])
        if t_s - ref[0] < 3.0 or not 60.0 <= abs(turn) <= 120.0:
            return
        moved = wrap180(self.rel - ref[2])
        if abs(wrap180(moved - turn)) <= 30.0:
            self._sign_votes[0] += 1
        elif abs(wrap180(moved + turn)) <= 30.0:
            self._sign_votes[1] += 1
        self._sign_ref = (t_s, course, self.rel)  # one vote per turn
        right, mirrored = self._sign_votes
        self.mirrored = mirrored >= self.s.mirror_votes and mirrored >= 2 * right


def consensus(votes: list[tuple[float, float]], n: int, span_s: float, within_deg: float) -> float | None:
    """The circular mean of the latest measurements (t, deg) that agree, when at least ``n`` of them,
    spanning ``span_s`` or more, all lie within ``within_deg`` of it; else None (pure)."""
    latest = votes[-1][1]
    near = [(t, v) for t, v in votes if abs(wrap180(v - latest)) <= within_deg]
    if len(near) < n or near[-1][0] - near[0][0] < span_s:
        return None
    rad = [math.radians(v) for _, v in near]
    mean = math.degrees(math.atan2(sum(map(math.sin, rad)), sum(map(math.cos, rad))))
    if any(abs(wrap180(v - mean)) > within_deg for _, v in near):
        return None
    return wrap180(mean)
