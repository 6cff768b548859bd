"""b-values from gradient chronograms: analytic waveforms and the published in-vivo values."""

import numpy as np
import pytest

from pipeline.io.chronogram import (b_values_from_chronogram, chronogram_conditions,
                                    read_chronogram)
from pipeline.preprocess.bvalues import GAMMA_1H_RAD_S_T, b_values_from_waveform, find_rf_pulses

DT_S = 10e-6


def _waveform(duration_s, pulses_s, lobes):
    """Gradients (n, 3) mT/m with rectangular lobes [(start_s, length_s, axis, mT/m)], RF."""
    n = int(round(duration_s / DT_S))
    t = np.arange(n) * DT_S
    g = np.zeros((n, 3))
    for start, length, axis, amplitude in lobes:
        g[(t >= start) & (t < start + length), axis] += amplitude
    rf = np.zeros(n)
    for centre in pulses_s:
        window = np.abs(t - centre) < 0.5e-3
        rf[window] = np.sinc((t[window] - centre) / 0.25e-3)
    return g, rf


def _stejskal_tanner_s_mm2(g_mt_m, delta_s, big_delta_s):
    return (GAMMA_1H_RAD_S_T * g_mt_m * 1e-3 * delta_s) ** 2 * (big_delta_s - delta_s / 3) * 1e-6


def test_spin_echo_matches_stejskal_tanner():
    g, rf = _waveform(0.08, [0.005, 0.035], [(0.010, 0.010, 0, 40.0), (0.040, 0.010, 0, 40.0)])
    result = b_values_from_waveform(g, rf, DT_S, sequence="se")
    expected = _stejskal_tanner_s_mm2(40.0, 0.010, 0.030)
    assert result.b_value_s_mm2 == pytest.approx(expected, rel=0.01)
    assert result.echo_time_s == pytest.approx(0.060, abs=2 * DT_S)
    np.testing.assert_allclose(np.abs(result.direction), [1, 0, 0], atol=1e-6)


def test_steam_ignores_mixing_time_gradients_but_counts_storage_time():
    lobes = [(0.006, 0.008, 2, 50.0), (0.030, 0.004, 0, 30.0),  # spoiler during TM
             (0.066, 0.008, 2, 50.0)]
    g, rf = _waveform(0.1, [0.004, 0.020, 0.060], lobes)
    result = b_values_from_waveform(g, rf, DT_S, sequence="steam")
    expected = _stejskal_tanner_s_mm2(50.0, 0.008, 0.060)
    assert result.b_value_s_mm2 == pytest.approx(expected, rel=0.01)
    assert result.mixing_time_s == pytest.approx(0.040, abs=2 * DT_S)
    assert result.echo_time_s == pytest.approx(0.032, abs=2 * DT_S)
    assert abs(result.b_matrix_s_mm2[0, 0]) < 1e-6 * expected


def test_cross_term_of_two_axes_appears_off_diagonal():
    lobes = [(0.010, 0.010, 0, 40.0), (0.040, 0.010, 0, 40.0),
             (0.010, 0.010, 1, 40.0), (0.040, 0.010, 1, 40.0)]
    g, rf = _waveform(0.08, [0.005, 0.035], lobes)
    b = b_values_from_waveform(g, rf, DT_S, sequence="se").b_matrix_s_mm2
    assert b[0, 1] == pytest.approx(b[0, 0], rel=1e-6)
    assert b[0, 0] + b[1, 1] == pytest.approx(2 * _stejskal_tanner_s_mm2(40.0, 0.01, 0.03),
                                              rel=0.01)


def test_rf_pulse_detection_and_errors(tmp_path):
    g, rf = _waveform(0.1, [0.004, 0.020, 0.060], [])
    assert [round(p[2] * DT_S, 4) for p in find_rf_pulses(rf, DT_S)] == [0.004, 0.020, 0.060]
    two_pulses = np.where(np.arange(rf.size) * DT_S < 0.03, rf, 0.0)
    with pytest.raises(ValueError, match="steam needs 3"):
        b_values_from_waveform(g, two_pulses, DT_S, "steam")
    bad = tmp_path / "bad.csv"
    bad.write_text("Gx,Gy,RF\n0,0,0\n1,1,1\n")
    with pytest.raises(ValueError, match="bad.csv"):
        read_chronogram(bad)


PUBLISHED_S_MM2 = {("G15", 1): 907, ("G25", 1): 2155, ("G35", 1): 3956,
                   ("G15", 2): 903, ("G25", 2): 2148, ("G35", 2): 3945,
                   ("G15", 3): 901, ("G25", 3): 2144, ("G35", 3): 3940}


@pytest.mark.parametrize("key", sorted(PUBLISHED_S_MM2))
def test_invivo_chronograms_reproduce_published_b_values(shared_data, key):
    folder = shared_data / "dmrs_7t_steam_invivo" / "chronogram"
    path = folder / f"chronogram_{key[0]}_dir{key[1]}.csv"
    result = b_values_from_chronogram(path, sequence="steam")
    assert result["b_value_s_mm2"] == pytest.approx(PUBLISHED_S_MM2[key], rel=0.02)
    b = np.asarray(result["b_matrix_s_mm2"])
    assert np.trace(b) == pytest.approx(result["b_value_s_mm2"])
    nominal = {1: [1, 1, -0.5], 2: [1, -0.5, 1], 3: [-0.5, 1, 1]}[key[1]]
    cosine = abs(np.dot(result["direction"], nominal) / np.linalg.norm(nominal))
    assert cosine > 0.97
    assert result["mixing_time_s"] == pytest.approx(0.060, abs=1e-3)


def test_chronogram_conditions_in_given_order(shared_data):
    folder = shared_data / "dmrs_7t_steam_invivo" / "chronogram"
    paths = [folder / f"chronogram_G{g}_dir2.csv" for g in (35, 15)]
    b_s_mm2, directions = chronogram_conditions(paths)
    np.testing.assert_allclose(b_s_mm2, [3945, 903], rtol=0.02)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0)
