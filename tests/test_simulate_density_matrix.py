"""Density-matrix engine and sequences against closed-form results."""

import numpy as np
import pytest

from pipeline.simulate.density_matrix import (equivalent_group_irreps, fragment_lines,
                                              lines_to_fid, merge_lines)
from pipeline.simulate.sequences import sequence_events, slaser_refocus_times

CF_MHZ = 123.2


def _nu(ppm):
    return (ppm - 4.65) * CF_MHZ


def _lines(groups, couplings, offsets, sequence, hetero=(), **timing):
    events, _ = sequence_events(sequence, **timing)
    return merge_lines(*fragment_lines(groups, couplings, list(hetero), offsets, events))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 9])
def test_equivalent_group_irreps_span_the_full_space(n):
    irreps = equivalent_group_irreps(n)
    assert sum(m * (2 * s + 1) for s, m in irreps) == 2 ** n
    # trace of Fz^2 over the full space is n 2^n / 4: the irreps must carry all of it
    tr_fz2 = sum(m * s * (s + 1) * (2 * s + 1) / 3 for s, m in irreps)
    assert tr_fz2 == pytest.approx(n * 2 ** n / 4)


def test_even_group_keeps_the_partner_signal_of_its_singlet_sector():
    """A2X: X must keep its full 1-proton signal (the A2 S=0 sector leaves X uncoupled)."""
    events, _ = sequence_events("fid")
    explicit = merge_lines(*fragment_lines([1, 1, 1], [(0, 2, 7.0), (1, 2, 7.0)], [],
                                           [300.0, 300.0, -250.0], events))
    grouped = merge_lines(*fragment_lines([2, 1], [(0, 1, 7.0)], [], [300.0, -250.0], events))
    fid_e = lines_to_fid(*explicit, 1e-4, 512)
    fid_g = lines_to_fid(*grouped, 1e-4, 512)
    np.testing.assert_allclose(fid_g, fid_e, atol=1e-9)
    x_lines = np.abs(grouped[0] - 250.0) < 20
    assert grouped[1][x_lines].sum().real == pytest.approx(1.0)


def test_ab_system_matches_closed_form():
    nu_a, nu_b, j = 30.0, 22.0, 12.0  # strongly coupled: delta nu / J < 1
    freq, amp = _lines([1, 1], [(0, 1, j)], [nu_a, nu_b], "fid")
    d = np.hypot(nu_a - nu_b, j)
    centre = (nu_a + nu_b) / 2
    expected_nu = centre + np.array([(d + j) / 2, (d - j) / 2, -(d - j) / 2, -(d + j) / 2])
    expected_amp = np.array([1 - j / d, 1 + j / d, 1 + j / d, 1 - j / d]) / 2
    order = np.argsort(-freq)  # FID frequency is -nu
    np.testing.assert_allclose(-freq[order], np.sort(expected_nu), atol=1e-9)
    np.testing.assert_allclose(amp[order].real, expected_amp[np.argsort(expected_nu)], atol=1e-9)
    np.testing.assert_allclose(amp.imag, 0, atol=1e-12)


def test_methyl_group_equals_three_explicit_spins():
    """A3X lactate: the composite-spin CH3 must reproduce the explicit 16-state simulation."""
    j = 6.933
    grouped = _lines([1, 3], [(0, 1, j)], [_nu(4.0974), _nu(1.3142)], "press",
                     echo_time_s=0.035)
    explicit = _lines([1, 1, 1, 1], [(0, 1, j), (0, 2, j), (0, 3, j)],
                      [_nu(4.0974)] + [_nu(1.3142)] * 3, "press", echo_time_s=0.035)
    fid_g = lines_to_fid(*grouped, 2.5e-4, 2048)
    fid_e = lines_to_fid(*explicit, 2.5e-4, 2048)
    np.testing.assert_allclose(fid_g, fid_e, atol=1e-9 * np.abs(fid_e).max())


@pytest.mark.parametrize("sequence,timing,expected", [
    ("fid", {}, 3.0), ("se", {"echo_time_s": 0.03}, 3.0), ("press", {"echo_time_s": 0.03}, 3.0),
    ("slaser", {"echo_time_s": 0.03}, 3.0),
    ("steam", {"echo_time_s": 0.03, "mixing_time_s": 0.06}, 1.5),  # stimulated echo = half
])
def test_singlet_amplitude_per_sequence(sequence, timing, expected):
    freq, amp = _lines([3], [], [_nu(2.008)], sequence, **timing)
    assert amp.sum() == pytest.approx(expected, abs=1e-9)
    assert np.allclose(freq, -_nu(2.008))


def _doublet_sign(te_s):
    freq, amp = _lines([1, 3], [(0, 1, 6.933)], [_nu(4.0974), _nu(1.3142)], "se",
                       echo_time_s=te_s)
    methyl = np.abs(freq + _nu(1.3142)) < 20
    return amp[methyl].sum().real / 3


def test_lactate_doublet_inverted_at_te_144_and_upright_at_te_288():
    # weak coupling: cos(pi J TE) = -0.998 at 144 ms and +0.993 at 288 ms
    assert _doublet_sign(0.144) == pytest.approx(np.cos(np.pi * 6.933 * 0.144), abs=0.01)
    assert _doublet_sign(0.288) == pytest.approx(np.cos(np.pi * 6.933 * 0.288), abs=0.01)
    assert _doublet_sign(0.144) < -0.99 and _doublet_sign(0.288) > 0.98


def test_heteronuclear_coupling_splits_and_is_refocused_by_proton_echo():
    hetero = [(0.5, [(0, 7.0)])]
    freq, amp = _lines([2], [], [_nu(3.9)], "fid", hetero=hetero)
    np.testing.assert_allclose(np.sort(freq), -_nu(3.9) + np.array([-3.5, 3.5]), atol=1e-9)
    np.testing.assert_allclose(amp.real, [1.0, 1.0], atol=1e-12)
    # at TE = 1/J a homonuclear doublet is inverted; a heteronuclear one is refocused
    freq, amp = _lines([2], [], [_nu(3.9)], "se", hetero=hetero, echo_time_s=1 / 7.0)
    np.testing.assert_allclose(amp.real, [1.0, 1.0], atol=1e-9)


def test_fid_echo_time_is_an_acquisition_delay():
    """A delayed pulse-acquire of a singlet is the FID advanced by the delay."""
    freq, amp = _lines([3], [], [_nu(2.008)], "fid", echo_time_s=0.01)
    assert freq[0] == pytest.approx(-_nu(2.008))
    assert amp[0] == pytest.approx(3 * np.exp(-2j * np.pi * _nu(2.008) * 0.01))


def test_steam_keeps_only_the_stimulated_echo():
    """For uncoupled spins the stimulated echo is half the spin echo, whatever TM."""
    for tm in (0.0, 0.01, 0.1):
        freq, amp = _lines([1, 1], [], [_nu(3.0), _nu(2.0)], "steam", echo_time_s=0.02,
                           mixing_time_s=tm)
        np.testing.assert_allclose(amp.real, [0.5, 0.5], atol=1e-9)


@pytest.mark.parametrize("sequence,timing", [
    ("press", {"te1_s": 0.02}),
    ("slaser", {}),
    ("slaser", {"refocus_times_s": [0.01, 0.03, 0.05, 0.08]}),
])
def test_multi_echo_equals_spin_echo_in_the_weak_coupling_limit(sequence, timing):
    """AX3 with delta nu / J ~ 1000: J-modulation depends only on TE, not on pulse timing."""
    offsets = [4000.0, -3000.0]
    se = _lines([1, 3], [(0, 1, 6.933)], offsets, "se", echo_time_s=0.1)
    other = _lines([1, 3], [(0, 1, 6.933)], offsets, sequence, echo_time_s=0.1, **timing)
    fid_se = lines_to_fid(*se, 5e-5, 1024)
    fid_other = lines_to_fid(*other, 5e-5, 1024)
    assert np.abs(fid_se - fid_other).max() < 1e-3 * np.abs(fid_se).max()


def test_lines_to_fid_matches_direct_sum():
    freq, amp = np.array([12.3, -200.7, 999.0]), np.array([1 + 2j, 0.5, -0.25j])
    t = np.arange(777) * 5e-4
    direct = (amp * np.exp(2j * np.pi * np.outer(t, freq))).sum(axis=1)
    np.testing.assert_allclose(lines_to_fid(freq, amp, 5e-4, 777), direct, atol=1e-12)


def test_sequence_timing_errors():
    with pytest.raises(ValueError, match="mixing time"):
        sequence_events("steam", echo_time_s=0.02)
    with pytest.raises(ValueError, match="TE1 \\+ TE2"):
        sequence_events("press", echo_time_s=0.03, te1_s=0.01, te2_s=0.01)
    with pytest.raises(ValueError, match="acquisition delay"):
        sequence_events("fid", echo_time_s=-0.03)
    with pytest.raises(ValueError, match="not at TE"):
        slaser_refocus_times(0.04, [0.005, 0.015, 0.025, 0.030])
    with pytest.raises(ValueError, match="unknown sequence"):
        sequence_events("mega", echo_time_s=0.03)
    with pytest.raises(ValueError, match="no mixing time"):
        sequence_events("press", echo_time_s=0.03, mixing_time_s=0.01)
    assert slaser_refocus_times(0.04) == pytest.approx([0.005, 0.015, 0.025, 0.035])
    assert slaser_refocus_times(0.04, [0.004, 0.014, 0.024, 0.034]) == [0.004, 0.014, 0.024,
                                                                        0.034]


def _brute_force_steam(offsets_hz, couplings, te_s, tm_s, dwell_s, n_points, steps=8):
    """Independent reference: Hilbert-space propagation of three spin-1/2 with scipy expm and
    crusher gradients emulated by averaging over z-rotations (no coherence bookkeeping)."""
    from functools import reduce

    from scipy.linalg import expm
    sx = np.array([[0, 0.5], [0.5, 0]], dtype=complex)
    sy = np.array([[0, -0.5j], [0.5j, 0]])
    sz = np.diag([0.5, -0.5]).astype(complex)
    n = len(offsets_hz)

    def op(single, k):
        return reduce(np.kron, [single if i == k else np.eye(2) for i in range(n)])
    ix, iy, iz = ([op(m, k) for k in range(n)] for m in (sx, sy, sz))
    fx, fy, fz = sum(ix), sum(iy), sum(iz)
    h = sum(2 * np.pi * nu * iz[k] for k, nu in enumerate(offsets_hz))
    for k, l, j in couplings:
        h = h + 2 * np.pi * j * (ix[k] @ ix[l] + iy[k] @ iy[l] + iz[k] @ iz[l])

    def rot(op_, angle):
        return expm(-1j * angle * op_)

    def conj(u, rho):
        return u @ rho @ u.conj().T
    p_y, p_my = rot(fy, np.pi / 2), rot(-fy, np.pi / 2)
    half, mix = rot(h, te_s / 2), rot(h, tm_s)
    step, f_minus = rot(h, dwell_s), fx - 1j * fy
    fid = np.zeros(n_points, dtype=complex)
    for a1 in 2 * np.pi * np.arange(steps) / steps:
        for a2 in 2 * np.pi * np.arange(steps) / steps:
            rho = conj(half, conj(p_y, fz))
            rho = conj(rot(fz, a2), conj(p_y, conj(rot(fz, a1), rho)))
            rho = conj(rot(fz, a1), conj(half, conj(p_my, conj(mix, rho))))
            for k in range(n_points):
                fid[k] += np.trace(rho @ f_minus)
                rho = conj(step, rho)
    return fid / steps ** 2 * 4 / 2 ** n


def test_steam_coherence_selection_matches_brute_force_crusher_averaging():
    offsets = [_nu(3.8914), _nu(2.8011), _nu(2.6533)]  # aspartate ABX at 3 T
    couplings = [(0, 1, 3.647), (0, 2, 9.107), (1, 2, -17.426)]
    te, tm, dwell, n = 0.02, 0.03, 2.5e-4, 48
    events, _ = sequence_events("steam", echo_time_s=te, mixing_time_s=tm)
    fid = lines_to_fid(*fragment_lines([1, 1, 1], couplings, [], offsets, events), dwell, n)
    reference = _brute_force_steam(offsets, couplings, te, tm, dwell, n)
    np.testing.assert_allclose(fid, reference, atol=1e-9)
    # and the mixing time matters for this strongly coupled system
    events_0, _ = sequence_events("steam", echo_time_s=te, mixing_time_s=0.0)
    fid_0 = lines_to_fid(*fragment_lines([1, 1, 1], couplings, [], offsets, events_0), dwell, n)
    assert np.abs(fid_0 - fid).max() > 0.05
