"""The CRLB of a ratio to tCr that bench_real_vs_lcmodel judges app-LCModel differences by:
first-order propagation of the amplitude covariance, checked against the spread of the ratio
over Gaussian draws of the amplitudes (truth independent of the propagation)."""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_real_vs_lcmodel import ratio_crlb_percent  # noqa: E402


def test_ratio_crlb_matches_the_spread_of_the_ratio():
    names = ["NAA", "NAAG", "Cr", "PCr", "GPC", "PCho", "Ins", "Glu", "Gln"]
    amplitudes = np.array([10.0, 1.0, 5.0, 3.0, 1.0, 0.5, 4.0, 6.0, 2.0])
    rng = np.random.default_rng(0)
    a = rng.standard_normal((9, 9)) * 0.05
    sd = 0.02 * amplitudes
    # a shared scale (correlated everything) plus independent parts
    covariance = np.outer(sd, sd) * 0.6 + np.diag(sd ** 2) * 0.4 + a @ a.T * 1e-3
    fit = SimpleNamespace(names=names, amplitudes=amplitudes, covariance=covariance)
    crlb = ratio_crlb_percent(fit)
    draws = rng.multivariate_normal(amplitudes, covariance, 200_000)
    total = {"tNAA": [0, 1], "tCho": [4, 5], "Ins": [6], "Glx": [7, 8], "Glu": [7]}
    tcr = draws[:, [2, 3]].sum(axis=1)
    for name, members in total.items():
        ratio = draws[:, members].sum(axis=1) / tcr
        assert crlb[name] == pytest.approx(100 * ratio.std() / ratio.mean(), rel=0.03), name
    # the shared scale cancels in a ratio: below the numerator's own relative SD (1.9 %)
    assert crlb["tNAA"] < 0.8 * 100 * np.sqrt(covariance[:2, :2].sum()) / 11.0
