"""PRESS with slice-selective refocusing (``pipeline.simulate.localisation``) against closed
forms: the slice-overlap weights of displaced slices, and the J-modulation of a weakly coupled
AX pair when a refocusing pulse flips A alone (J refocused) or both spins (J evolves on)."""

import numpy as np
import pytest

from pipeline.simulate.basis_simulation import simulate_basis
from pipeline.simulate.density_matrix import fragment_lines_weighted, merge_lines
from pipeline.simulate.localisation import press_localised_events, slice_patterns
from pipeline.simulate.sequences import press_timings

TE1_S, TE2_S = 0.012, 0.023
J_HZ = 7.0
NU_A, NU_X = 300.0, -700.0  # |nu_A - nu_X| / J > 100: weak coupling, first order holds


def test_slice_patterns_are_the_overlaps_of_displaced_slices():
    """Two spins 0.3 slice thicknesses apart: both refocused over 0.7, each alone over 0.3."""
    got = dict(slice_patterns([0.0, -390.0], 1300.0))
    assert got == pytest.approx({(True, True): 0.7, (True, False): 0.3, (False, True): 0.3})
    assert dict(slice_patterns([123.0], 1300.0)) == pytest.approx({(True,): 1.0})


def a_signal(first, second) -> complex:
    """Sum of the A-doublet amplitudes (the first FID point of A) after PRESS with the given
    refocusing patterns."""
    events = press_localised_events(TE1_S, TE2_S, first, second)
    freq, amp = merge_lines(*fragment_lines_weighted([1, 1], [(0, 1, J_HZ)], [],
                                                     [NU_A, NU_X], [(1.0, events)]))
    return complex(amp[np.abs(freq + NU_A) < 20].sum())


@pytest.mark.parametrize("first,second,j_time_s", [
    ((True, True), (True, True), TE1_S + TE2_S),   # both flipped twice: J evolves over TE
    ((True, False), (True, False), 0.0),           # A alone each time: J refocused
    ((True, False), (True, True), -TE2_S),         # t1 - t2 - t3 = -TE2
    ((True, True), (True, False), TE1_S),          # t1 + t2 - t3 = TE1
])
def test_weak_ax_modulation_follows_which_spins_are_refocused(first, second, j_time_s):
    expected = np.cos(np.pi * J_HZ * j_time_s)
    got = a_signal(first, second)
    assert got.real == pytest.approx(expected, abs=2e-3)
    assert abs(got.imag) < 2e-2  # in phase up to the (J / delta)-order antiphase terms


def test_unrefocused_spin_gives_no_signal():
    """A outside its first refocusing slice: its coherence is crushed (what is left is the
    mixing of A and X states, of order J / (nu_A - nu_X))."""
    assert abs(a_signal((False, True), (True, True))) < J_HZ / abs(NU_A - NU_X)


def test_singlet_scale_and_wide_band_limit():
    """Slice selection leaves a singlet (Cr) unchanged and, for a bandwidth far above the
    spectral spread, reproduces the ideal non-selective PRESS of a coupled system (Glu)."""
    grid = dict(cf_mhz=123.2, dwell_s=1 / 2000, n_points=512, echo_time_s=0.035,
                metabolites=["Cr", "Glu"], use_cache=False)
    ideal = simulate_basis("press", **grid)
    wide = simulate_basis("press", refocus_bandwidth_hz=1e7, **grid)
    narrow = simulate_basis("press", refocus_bandwidth_hz=1000.0, **grid)
    np.testing.assert_allclose(wide.fids, ideal.fids, atol=2e-4 * np.abs(ideal.fids).max())
    np.testing.assert_allclose(narrow.fid("Cr"), ideal.fid("Cr"), atol=1e-9)
    assert np.max(np.abs(narrow.fid("Glu") - ideal.fid("Glu"))) > 0.02
    assert narrow.provenance["refocusing"] == {"bandwidth_hz": 1000.0, "centre_ppm": 3.0}


def test_refocus_bandwidth_needs_press():
    with pytest.raises(ValueError, match="refocus_bandwidth_hz"):
        simulate_basis("steam", 123.2, 1 / 2000, 256, echo_time_s=0.02, mixing_time_s=0.01,
                       metabolites=["Cr"], refocus_bandwidth_hz=1000.0, use_cache=False)


def test_default_press_split_is_short_first_echo():
    """Default TE1 = min(0.4 TE, 14 ms) (measured against vendor-simulated bases)."""
    assert press_timings(0.035) == pytest.approx((0.014, 0.021))
    assert press_timings(0.030) == pytest.approx((0.012, 0.018))
    assert press_timings(0.144) == pytest.approx((0.014, 0.130))
    assert press_timings(0.035, te1_s=0.0175) == pytest.approx((0.0175, 0.0175))
