"""The matcher's coloured-GNSS route score (``MatchSettings.gnss_innov``; docs/route.md).

GNSS error is not white: most of it is a slowly varying bias (first-order Gauss-Markov, time
constant ``tau_s``, ``coloured`` of the variance), the rest white. The distance emission of a hidden
Markov matcher counts the same lean again at every step, so a road that the bias leans towards
gains on the true one step after step while the bias barely changes. Here each state carries its
place along its edge ``s`` and the bias ``b = (bx, by)`` with their covariance, and each route is
scored by the Kalman innovation of the fix given the predecessor's place moved on by the distance
travelled and its bias decayed: a whitened likelihood in which a lean that persists is explained by
the bias once, and only what is new counts again.

A state's filter is ``(bias, P)`` with ``P = (ss, sx, sy, xx, xy, yy)``; the fix is
``z = A + s u + b + white``, with ``A`` the edge's start and ``u`` its unit direction (an edge is
straight), so the update is a plain (linear) Kalman update of a 3-vector.
"""

from __future__ import annotations

import math

import numpy as np

Filter = tuple[tuple[float, float], tuple[float, float, float, float, float, float]]


def start(geom: tuple[float, float, float, float], fix_xy: tuple[float, float], off: float,
          prev: Filter | None, elapsed: float, sigma_m: float, coloured: float, tau_s: float) -> tuple[float, Filter, float]:
    """A new chain on an edge: the place from the fix alone (a vague prior at the projection
    ``off``), the bias carried over from ``prev`` (a U-turn) decayed by ``elapsed`` seconds, or
    unknown. Returns (offset, filter, innovation log-likelihood)."""
    var = sigma_m ** 2
    pc = coloured * var
    if prev is None:
        b, P = (0.0, 0.0), (4.0 * var, 0.0, 0.0, pc, 0.0, pc)
    else:
        rho = math.exp(-max(elapsed, 0.0) / tau_s)
        (bx, by), Pp = prev
        q = pc * (1.0 - rho * rho)
        b = (rho * bx, rho * by)
        P = (4.0 * var, 0.0, 0.0, rho * rho * Pp[3] + q, rho * rho * Pp[4], rho * rho * Pp[5] + q)
    return update(geom, fix_xy, off, b, P, (1.0 - coloured) * var)


def step(geom: tuple[float, float, float, float], fix_xy: tuple[float, float], s_pred: float, prev: Filter,
         travelled: float, elapsed: float, along_q: float, sigma_m: float, coloured: float,
         tau_s: float) -> tuple[float, Filter, float]:
    """The predecessor's place moved on by the distance travelled (``s_pred`` on this edge; its
    variance grows ``along_q`` m^2 per metre), its bias decayed over ``elapsed`` seconds, then the fix."""
    rho = math.exp(-max(elapsed, 0.0) / tau_s)
    q = coloured * sigma_m ** 2 * (1.0 - rho * rho)
    (bx, by), (ss, sx, sy, xx, xy, yy) = prev
    P = (ss + along_q * max(travelled, 0.0), rho * sx, rho * sy, rho * rho * xx + q, rho * rho * xy, rho * rho * yy + q)
    return update(geom, fix_xy, s_pred, (rho * bx, rho * by), P, (1.0 - coloured) * sigma_m ** 2)


def update(geom: tuple[float, float, float, float], fix_xy: tuple[float, float], s0: float,
           b: tuple[float, float], P: tuple, white: float) -> tuple[float, Filter, float]:
    """Kalman update of (s, bx, by) with the fix; ``geom`` = (start x, start y, unit x, unit y) of
    the edge. Returns (offset, (bias, covariance), innovation log-likelihood without the 2-pi term)."""
    ax, ay, ux, uy = geom
    zx, zy = fix_xy
    vx = zx - (ax + s0 * ux + b[0])
    vy = zy - (ay + s0 * uy + b[1])
    ss, sx, sy, xx, xy, yy = P
    # H = [[ux, 1, 0], [uy, 0, 1]]; the columns of P H^T
    c1 = (ux * ss + sx, ux * sx + xx, ux * sy + xy)
    c2 = (uy * ss + sy, uy * sx + xy, uy * sy + yy)
    s11 = ux * c1[0] + c1[1] + white
    s12 = ux * c2[0] + c2[1]
    s22 = uy * c2[0] + c2[2] + white
    det = s11 * s22 - s12 * s12
    i11, i12, i22 = s22 / det, -s12 / det, s11 / det
    K = [(c1[r] * i11 + c2[r] * i12, c1[r] * i12 + c2[r] * i22) for r in range(3)]
    s_new = s0 + K[0][0] * vx + K[0][1] * vy
    bx = b[0] + K[1][0] * vx + K[1][1] * vy
    by = b[1] + K[2][0] * vx + K[2][1] * vy

    def pe(r: int, c: int) -> float:  # (K H P)[r, c]; the rows of H P are c1, c2 (P symmetric)
        return K[r][0] * c1[c] + K[r][1] * c2[c]

    Pn = (ss - pe(0, 0), sx - pe(0, 1), sy - pe(0, 2), xx - pe(1, 1), xy - pe(1, 2), yy - pe(2, 2))
    ll = -0.5 * (vx * (i11 * vx + i12 * vy) + vy * (i12 * vx + i22 * vy)) - 0.5 * math.log(det)
    return s_new, ((bx, by), Pn), ll


# -- the cross-road variant (``gnss_innov: cross``) ------------------------------------------------
# The place along the road stays the matcher's (route term and 1-D fusion); only the distance
# emission is whitened. A state carries the GNSS bias b = (bx, by) with covariance (xx, xy, yy); the
# fix's offset from the candidate's nearest road point, r = z - p, is measured in its own direction
# h = r / |r|: y = |r| = h . b + white. Across the road that is the signed cross-track offset; past
# a road's end (a clamped projection) it includes the overshoot.

Bias = tuple[tuple[float, float], tuple[float, float, float]]


def bias_prior(prev: Bias | None, elapsed: float, sigma_m: float, coloured: float, tau_s: float) -> Bias:
    """The bias of a chain decayed over ``elapsed`` seconds (first-order Gauss-Markov), or unknown."""
    pc = coloured * sigma_m ** 2
    if prev is None:
        return (0.0, 0.0), (pc, 0.0, pc)
    rho = math.exp(-max(elapsed, 0.0) / tau_s)
    (bx, by), (xx, xy, yy) = prev
    q = pc * (1.0 - rho * rho)
    return (rho * bx, rho * by), (rho * rho * xx + q, rho * rho * xy, rho * rho * yy + q)


def cross_update(prior: Bias, resid, dist, white: float):
    """The prior bias updated with each candidate's offset (``resid``: n x 2, ``dist``: n; numpy):
    (bias n x 2, covariance n x 3, innovation log-likelihood n, without the 2-pi term)."""
    (bx, by), (xx, xy, yy) = prior
    safe = np.maximum(dist, 1e-6)
    hx, hy = resid[:, 0] / safe, resid[:, 1] / safe
    hx = np.where(dist > 1e-6, hx, 1.0)
    hy = np.where(dist > 1e-6, hy, 0.0)
    ph_x = xx * hx + xy * hy  # P h
    ph_y = xy * hx + yy * hy
    S = hx * ph_x + hy * ph_y + white
    v = dist - (hx * bx + hy * by)
    kx, ky = ph_x / S, ph_y / S
    bias = np.column_stack([bx + kx * v, by + ky * v])
    cov = np.column_stack([xx - kx * ph_x, xy - kx * ph_y, yy - ky * ph_y])
    ll = -0.5 * v * v / S - 0.5 * np.log(S)
    return bias, cov, ll
