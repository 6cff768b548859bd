"""Does ``dynamics.order`` fit the data? A check of ``dmrs-bids-convert`` on the stored dynamics.

A wrong loop order converts without complaint: every "condition" then mixes b-values and the
app fits a diffusion decay that is not there (7 T in-vivo pregame set read transient-fastest:
tNAA ADC 0.023 instead of 0.119 um^2/ms, exit 0). The data themselves tell the orders apart:
the signal size of a transient depends on its b-value, so the transients of one true condition
agree with one another and differ from those of another b. For each order the stated loops
can be nested in, the stored dynamics are grouped into conditions and the one-way ANOVA
F-ratio (between-condition over within-condition variance of the signal size) is computed.
When another order groups them far better than the stated one, the stated order is very
likely wrong (see :func:`check_loop_order` for the rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import permutations

import numpy as np
from scipy import stats

from .convert_mapping import LEGACY_ORDERS, ConversionError, split_loops

SIGNAL_WINDOW_S = 0.010
"""The signal size of a transient is its mean magnitude over the first 10 ms of the FID."""
MAX_P_OTHER = 1e-6
"""An other order must group the transients this significantly (p of its F-ratio) ..."""
MIN_F_FACTOR = 10.0
"""... and with an F-ratio this many times the stated order's (at least 1) to doubt it."""
STATED_CONTRAST_P = 0.01
"""Refused only when the stated grouping shows no contrast between its conditions either (p of
its F-ratio at least this): a wrong order mixes b-values in every condition (p 0.02-0.99 on the
shared sets read the wrong way), while a right order under slow drift or a step in signal size
keeps its b-contrast (p 0.002-0.006 in such simulations) even when blocks of transients group
better; that case is a warning."""


@dataclass(frozen=True)
class OrderCheck:
    """F-ratios of the stated order and of the best other order of the same loops."""
    stated: list
    f_stated: float
    p_stated: float
    other: list
    f_other: float
    p_other: float

    @property
    def doubtful(self) -> bool:
        """True when the data group far better under the other order (:data:`MAX_P_OTHER`,
        :data:`MIN_F_FACTOR`); a perfect stated grouping (F infinite) is never doubted."""
        return bool(np.isfinite(self.f_stated) and self.p_other < MAX_P_OTHER
                    and self.f_other >= MIN_F_FACTOR * max(self.f_stated, 1.0))

    @property
    def contradicted(self) -> bool:
        """Doubtful, and the stated conditions show no contrast of their own
        (:data:`STATED_CONTRAST_P`): the stated order is very likely wrong."""
        return self.doubtful and self.p_stated >= STATED_CONTRAST_P

    def statistic(self) -> str:
        """The two F-ratios with their p-values, for messages and the conversion notes."""
        return (f"F = {self.f_stated:.3g} (p = {self.p_stated:.2g}) with the stated order "
                f"{order_text(self.stated)}, F = {self.f_other:.3g} (p = {self.p_other:.2g}) "
                f"with {order_text(self.other)}")


def order_text(loops: list) -> str:
    """A loop order as the mapping writes it: the legacy word when there is one."""
    for word, legacy in LEGACY_ORDERS.items():
        if list(loops) == legacy:
            return f'"{word}"'
    return json.dumps(list(loops))


def signal_sizes(fids: np.ndarray, dwell_s: float, window_s: float = SIGNAL_WINDOW_S) -> np.ndarray:
    """Size of each stored dynamic of ``fids`` (1, n_dyn, coils, points): the mean over the
    first ``window_s`` (4 points at least, a quarter of the points at most) of the coil
    root-sum-of-squares |FID|. A magnitude is blind to the frequency and phase drift between
    transients (a common factor exp(i(2 pi f t + phi)) has modulus 1), so what is left is
    what diffusion weighting changes: the amount of signal."""
    n_points = fids.shape[-1]
    n_first = int(min(max(4, round(window_s / dwell_s)), max(1, n_points // 4)))
    magnitude = np.sqrt(np.sum(np.abs(fids[0, :, :, :n_first]) ** 2, axis=1))
    return magnitude.mean(axis=-1)


def f_ratio(values: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """One-way ANOVA of ``values`` grouped by ``labels``: (F, p). F is infinite when the
    groups have no spread inside but differ; (0, 1) when nothing varies at all."""
    groups = [values[labels == g] for g in np.unique(labels)]
    k, n = len(groups), len(values)
    between = sum(len(g) * (g.mean() - values.mean()) ** 2 for g in groups) / (k - 1)
    within = sum(np.sum((g - g.mean()) ** 2) for g in groups) / (n - k)
    if within <= 0:
        return (np.inf, 0.0) if between > 0 else (0.0, 1.0)
    f = between / within
    return float(f), float(stats.f.sf(f, k - 1, n - k))


def condition_labels(n_dyn: int, loops: list, sizes: dict, source) -> np.ndarray:
    """The condition each stored dynamic goes to under the nested ``loops`` (fastest first)."""
    index = np.arange(n_dyn, dtype=float).reshape(1, n_dyn, 1, 1)
    split = split_loops(index, loops, sizes, source)[..., 0, 0].real.astype(int)
    labels = np.empty(n_dyn, dtype=int)
    for condition, dynamics in enumerate(split):
        labels[dynamics] = condition
    return labels


def _partition_key(labels: np.ndarray) -> tuple:
    """The grouping itself, whatever the condition numbers (relabelled by first occurrence)."""
    first = {}
    return tuple(first.setdefault(int(x), len(first)) for x in labels)


def check_loop_order(fids: np.ndarray, dwell_s: float, loops: list, sizes: dict,
                     b_values: np.ndarray, source) -> OrderCheck | None:
    """Compare the stated nesting ``loops`` of the stored dynamics ``fids`` (1, n_dyn, coils,
    points) with every other nesting of the same loops (each grouping once).

    None when there is nothing to tell apart: one condition, one transient per condition, a
    single b-value (no diffusion contrast to expect between conditions), non-finite data, or
    no other grouping. Otherwise the stated F-ratio and the best other one; ``contradicted``
    says whether the stated order is very likely wrong.
    """
    n_dyn = fids.shape[1]
    n_cond = int(np.prod([sizes[k] for k in loops if k != "transient"]))
    b = np.asarray(b_values, dtype=float)
    if n_cond < 2 or n_dyn < 2 * n_cond or len(np.unique(b[np.isfinite(b)])) < 2:
        return None
    values = signal_sizes(fids, dwell_s)
    if not np.all(np.isfinite(values)):
        return None
    stated_labels = condition_labels(n_dyn, loops, sizes, source)
    seen = {_partition_key(stated_labels)}
    best = None
    for other in permutations(loops):
        labels = condition_labels(n_dyn, list(other), sizes, source)
        key = _partition_key(labels)
        if key in seen:
            continue
        seen.add(key)
        f, p = f_ratio(values, labels)
        if best is None or f > best[1]:
            best = (list(other), f, p)
    if best is None:
        return None
    f_stated, p_stated = f_ratio(values, stated_labels)
    return OrderCheck(list(loops), f_stated, p_stated, *best)


def loop_order_verdict(check: OrderCheck | None, source, enforce: bool) -> tuple[list, list]:
    """(facts, warnings) of a loop-order check for the conversion notes; raises
    ConversionError when the data contradict the stated order and ``enforce`` (the mapping's
    ``dynamics.check_order``, true unless set false) holds."""
    if check is None:
        return [], []
    if check.doubtful and not check.contradicted:
        return [], [f"{source}: dynamics.order {order_text(check.stated)} kept, but the "
                    f"signal size of the transients is far more alike within conditions under "
                    f"{order_text(check.other)} ({check.statistic()}); the stated conditions "
                    "differ from one another too, as b-values do, so this may be drift or a "
                    "step in signal size (motion) rather than a wrong order: check the "
                    "order, and the drift and transients figures of the report"]
    if not check.contradicted:
        return [f"{source}: dynamics.order {order_text(check.stated)} fits the data "
                f"(signal size per transient grouped by condition: {check.statistic()})"], []
    problem = (f"{source}: dynamics.order {order_text(check.stated)} does not fit the data: "
               f"the signal size of the transients is far more alike within conditions "
               f"under {order_text(check.other)} ({check.statistic()}); with the stated "
               "order every condition would mix b-values")
    if enforce:
        raise ConversionError(f"{problem}. Set dynamics.order = {order_text(check.other)}, "
                              "or, if you are sure of the stated order, dynamics.check_order "
                              "= false")
    return [], [f"{problem} (kept: dynamics.check_order = false)"]
