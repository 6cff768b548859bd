"""Free-form lineshape kernel: a regularised convolution of the metabolite model (issue 13).

LCModel convolves its basis with a free lineshape of a few points, penalising the kernel's
roughness. Here, after the Voigt fit, the metabolite part of the model (amplitudes and
non-linear parameters fixed) is convolved with a kernel ``c_j`` on the spectral grid
(``j = -J..J`` steps of ``kernel_step_hz``: the grid step ``1 / (n dwell)``, at most 0.5 Hz): the kernel, the baseline and the fixed MM/lipid
part are found by one linear least-squares solve with a ridge penalty on ``c``
(towards a delta: no change) and unit area. A spectral shift by ``f`` is the FID times
``exp(2i pi f t)``, so the kernel becomes a time-domain factor ``k(t)`` applied to each
metabolite FID (``FitProblem.kernel_t``), and the full fit is rerun with it.
"""

from __future__ import annotations

import numpy as np

from . import model as M

AREA_WEIGHT = 1e3
"""Weight of the unit-area row (relative to the metabolite model's norm)."""


MAX_STEP_HZ = 0.5
"""Kernel point spacing: the spectral grid step, or finer when the grid is coarser than this."""


def kernel_step_hz(problem: M.FitProblem) -> float:
    return min(1.0 / (problem.n_points * problem.dwell_s), MAX_STEP_HZ)


def kernel_half_width_bins(problem: M.FitProblem, half_width_hz: float) -> int:
    """Number of kernel points on each side of its centre (at least 1)."""
    return max(1, int(round(half_width_hz / kernel_step_hz(problem))))


def shifted_metabolite_model(problem: M.FitProblem, theta: np.ndarray, weights: np.ndarray,
                             half_bins: int) -> np.ndarray:
    """Complex ``(2J+1, n_window)``: the phased metabolite model moved by ``j`` kernel steps."""
    rows = M.kernel_rows(problem.names)
    summed = weights[rows] @ M.modulated_fids(problem, theta)[rows]
    phase = M.phase_factor(problem, theta, problem.freq_window_hz)
    offsets_hz = kernel_step_hz(problem) * np.arange(-half_bins, half_bins + 1)
    moved = summed[None, :] * np.exp(2j * np.pi * offsets_hz[:, None] * problem.t_s[None, :])
    return np.fft.fft(moved, axis=-1)[:, problem.fft_index] * phase


def estimate_kernel(problem: M.FitProblem, theta: np.ndarray, weights: np.ndarray,
                    y_window: np.ndarray, half_bins: int, smoothness: float) -> np.ndarray:
    """Kernel ``c`` (length ``2J+1``, unit sum) minimising the residual of
    ``y = sum_j c_j M_j + fixed + baseline`` plus ``smoothness * |M_0|^2 * |c - delta|^2``
    (a ridge towards no change: the Voigt already carries the width, the kernel corrects its
    shape).

    ``weights`` are the coefficients of the unnormalised basis FIDs (``coef / column_norms``).
    """
    shifted = shifted_metabolite_model(problem, theta, weights, half_bins)
    others = np.setdiff1d(np.arange(problem.n_metab), M.kernel_rows(problem.names))
    fixed = np.zeros(problem.window.size, dtype=complex)
    if others.size:
        fids = M.modulated_fids(problem, theta)[others]
        fixed = (np.fft.fft(weights[others] @ fids)[problem.fft_index]
                 * M.phase_factor(problem, theta, problem.freq_window_hz))
    base_cols, base_pen = M.baseline_blocks(problem)
    n_c = shifted.shape[0]
    norm = float(np.linalg.norm(shifted[half_bins]))
    rough = np.eye(n_c) * np.sqrt(smoothness) * norm
    delta = np.zeros(n_c)
    delta[half_bins] = 1.0
    area = np.full((1, n_c), AREA_WEIGHT * norm)
    n_b = base_cols.shape[1]
    a = np.vstack([np.hstack([M.real_stack(shifted).T, base_cols]),
                   np.hstack([np.zeros((base_pen.shape[0], n_c)), base_pen]),
                   np.hstack([rough, np.zeros((rough.shape[0], n_b))]),
                   np.hstack([area, np.zeros((1, n_b))])])
    y = np.concatenate([M.real_stack(y_window - fixed), np.zeros(base_pen.shape[0]),
                        rough @ delta, [AREA_WEIGHT * norm]])
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    c = coef[:n_c]
    return c / np.sum(c)


def kernel_time_factor(problem: M.FitProblem, c: np.ndarray) -> np.ndarray:
    """``k(t) = sum_j c_j exp(2i pi j df t)`` on the problem's time axis."""
    half = (c.size - 1) // 2
    j = np.arange(-half, half + 1)
    return np.exp(2j * np.pi * kernel_step_hz(problem) * np.outer(problem.t_s, j)) @ c


def kernel_fwhm_hz(problem: M.FitProblem, c: np.ndarray) -> float:
    """Width of the kernel at half its maximum: the span of its grid points at or above half
    the peak, in Hz (grid-limited: a multiple of the kernel's step)."""
    peak = int(np.argmax(c))
    above = np.flatnonzero(c >= 0.5 * c[peak])
    return float((above[-1] - above[0] + 1) * kernel_step_hz(problem))
