"""Issue 14 item 4: chronograms of every simulated sequence, adiabatic refocusing pulses timed
at their centre, pulse choice, and chronograms matched to conditions by (shell, direction).

Synthetic waveforms have rectangular gradient lobes, so their b-value is known in closed form
(Stejskal-Tanner for each balanced lobe pair; 2 g^2 G^2 (T/2)^3 / 3 for a slice-selection
gradient of duration T centred on a refocusing pulse)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.acquisition import Acquisition
from pipeline.io.chronogram import acquisition_with_chronograms, assign_by_shell_direction
from pipeline.preprocess.bvalues import (GAMMA_1H_RAD_S_T, b_matrix_s_mm2, b_values_from_waveform,
                                         find_rf_pulses)

DT_S = 10e-6
TP_S = 4e-3  # adiabatic pulse duration
PUBLISHED_B_S_MM2 = {1: [907, 2155, 3956], 2: [903, 2148, 3945], 3: [901, 2144, 3940]}


def _st(g_mt_m, delta_s, big_delta_s):
    return (GAMMA_1H_RAD_S_T * g_mt_m * 1e-3 * delta_s) ** 2 * (big_delta_s - delta_s / 3) * 1e-6


def _slice_select(g_mt_m, duration_s):
    return 2 * (GAMMA_1H_RAD_S_T * g_mt_m * 1e-3) ** 2 * (duration_s / 2) ** 3 / 3 * 1e-6


def _adiabatic(t, centre_s, f_off_hz):
    """Real part of a frequency-swept HS8 pulse: symmetric envelope, but 90 degrees of phase
    at its centre, so the |RF| peak is not at the centre."""
    tau = np.clip(2 * (t - centre_s) / TP_S, -1, 1)
    envelope = np.where(np.abs(t - centre_s) <= TP_S / 2, 1 / np.cosh(4 * tau ** 8), 0.0)
    phase = 2 * np.pi * (5000 / 2 * tau ** 2 * TP_S / 4 + f_off_hz * (t - centre_s)) + np.pi / 2
    return envelope * np.cos(phase)


class _Trace:
    def __init__(self, duration_s):
        self.t = np.arange(int(round(duration_s / DT_S))) * DT_S
        self.g = np.zeros((self.t.size, 3))
        self.rf = np.zeros(self.t.size)

    def lobe(self, axis, start_s, length_s, mt_m):
        self.g[(self.t >= start_s - 1e-9) & (self.t < start_s + length_s - 1e-9), axis] += mt_m

    def sinc_pulse(self, centre_s):
        window = np.abs(self.t - centre_s) < 0.5e-3
        self.rf[window] += np.sinc((self.t[window] - centre_s) / 0.25e-3)

    def refocusing(self, centre_s, f_off_hz, crusher_mt_m=30.0, slice_mt_m=25.0):
        """Adiabatic pulse with its slice-selection gradient (y) and crusher pair (x)."""
        self.rf += _adiabatic(self.t, centre_s, f_off_hz)
        self.lobe(1, centre_s - TP_S / 2, TP_S, slice_mt_m)
        self.lobe(0, centre_s - TP_S / 2 - 1e-3, 1e-3, crusher_mt_m)
        self.lobe(0, centre_s + TP_S / 2, 1e-3, crusher_mt_m)
        return _st(crusher_mt_m, 1e-3, 1e-3 + TP_S) + _slice_select(slice_mt_m, TP_S)


def _slaser(water_suppression=False):
    """Excitation at 5 ms (+6 ms with water suppression), 4 adiabatic 180s at TE/8, 3TE/8,
    5TE/8, 7TE/8 (TE 100 ms), diffusion lobes (z) around the first pulse of each pair."""
    shift = 0.006 if water_suppression else 0.0
    trace = _Trace(0.11 + shift)
    if water_suppression:
        for c in (0.001, 0.003, 0.005):
            trace.sinc_pulse(c)
            trace.lobe(2, c + 0.6e-3, 0.8e-3, 20.0)  # spoilers (before excitation: not counted)
    t0 = 0.005 + shift
    trace.sinc_pulse(t0)
    expected = 0.0
    centres = [t0 + 0.1 * k / 8 for k in (1, 3, 5, 7)]
    for centre, f_off in zip(centres, (900, 1300, 700, 400)):
        expected += trace.refocusing(centre, f_off)
    for start in (0.007, 0.022, 0.045, 0.070):
        trace.lobe(2, start + shift, 0.006, 60.0)
    expected += _st(60.0, 0.006, 0.015) + _st(60.0, 0.006, 0.025)
    return trace, [t0] + centres, expected


def test_slaser_two_adiabatic_pairs_timed_at_their_centres():
    trace, times, expected = _slaser()
    peaks = np.array([p for _, _, p in find_rf_pulses(trace.rf, DT_S)]) * DT_S
    assert np.max(np.abs(peaks[1:] - times[1:])) > 0.3e-3  # the |RF| peaks are off-centre
    result = b_values_from_waveform(trace.g, trace.rf, DT_S, "slaser")
    np.testing.assert_allclose(result.pulse_times_s, times, atol=DT_S)
    assert result.b_value_s_mm2 == pytest.approx(expected, rel=1e-3)
    assert result.echo_time_s == pytest.approx(0.1, abs=2 * DT_S)
    assert np.linalg.norm(result.residual_k_rad_m) < 1.0
    # timing the adiabatic pulses at their |RF| peak leaves the pathway unrefocused, b off by >1 %
    at_peaks = b_matrix_s_mm2(trace.g, DT_S, peaks, "slaser")
    assert abs(at_peaks.b_value_s_mm2 / expected - 1) > 0.01
    assert np.linalg.norm(at_peaks.residual_k_rad_m) > 1000


def test_water_suppression_pulses_are_skipped_automatically_or_by_index():
    trace, times, expected = _slaser(water_suppression=True)
    assert len(find_rf_pulses(trace.rf, DT_S)) == 8
    auto = b_values_from_waveform(trace.g, trace.rf, DT_S, "slaser")
    np.testing.assert_allclose(auto.pulse_times_s, times, atol=DT_S)
    assert auto.b_value_s_mm2 == pytest.approx(expected, rel=1e-3)
    chosen = b_values_from_waveform(trace.g, trace.rf, DT_S, "slaser", pulse_indices=[3, 4, 5, 6, 7])
    assert chosen.b_value_s_mm2 == auto.b_value_s_mm2
    with pytest.raises(ValueError, match="do not choose 5 of the 8"):
        b_values_from_waveform(trace.g, trace.rf, DT_S, "slaser", pulse_indices=[0, 1])
    with pytest.raises(ValueError, match=r"found 8 RF pulses .*steam needs 3.*"
                                         "chronogram_pulse_indices"):
        b_values_from_waveform(trace.g, trace.rf, DT_S, "steam")


def test_pgse_with_an_adiabatic_refocusing_pulse():
    trace = _Trace(0.08)
    trace.sinc_pulse(0.005)
    expected = trace.refocusing(0.035, 900)
    trace.lobe(2, 0.010, 0.010, 40.0)
    trace.lobe(2, 0.040, 0.010, 40.0)
    expected += _st(40.0, 0.010, 0.030)
    result = b_values_from_waveform(trace.g, trace.rf, DT_S, "se")
    assert result.pulse_times_s[1] == pytest.approx(0.035, abs=DT_S)
    assert result.b_value_s_mm2 == pytest.approx(expected, rel=1e-3)


def test_press_with_two_refocusing_pulses():
    trace = _Trace(0.09)
    trace.sinc_pulse(0.005)  # TE 60 ms: refocusing at 20 and 50 ms (TE1 = TE2 = 30 ms)
    expected = trace.refocusing(0.020, 900) + trace.refocusing(0.050, 1300)
    trace.lobe(2, 0.024, 0.008, 50.0)   # around the second refocusing pulse
    trace.lobe(2, 0.054, 0.008, 50.0)
    expected += _st(50.0, 0.008, 0.030)
    result = b_values_from_waveform(trace.g, trace.rf, DT_S, "press")
    assert result.echo_time_s == pytest.approx(0.060, abs=2 * DT_S)
    assert result.b_value_s_mm2 == pytest.approx(expected, rel=1e-3)


def test_steam_with_a_spoiler_in_the_mixing_time():
    trace = _Trace(0.1)
    for c in (0.004, 0.020, 0.060):
        trace.sinc_pulse(c)
    trace.lobe(2, 0.006, 0.008, 50.0)
    trace.lobe(0, 0.030, 0.004, 30.0)  # spoiler during TM: not part of the pathway
    trace.lobe(2, 0.066, 0.008, 50.0)
    result = b_values_from_waveform(trace.g, trace.rf, DT_S, "steam")
    assert result.b_value_s_mm2 == pytest.approx(_st(50.0, 0.008, 0.060), rel=1e-3)


def test_assignment_by_shell_and_direction():
    d = np.array([[1, 1, -0.5], [1, -0.5, 1], [-0.5, 1, 1]]) / 1.5
    b_nominal = np.repeat([900.0, 2000.0], 3)
    dirs_nominal = np.vstack([d, d])
    rng = np.random.default_rng(3)
    order = rng.permutation(6)
    b_chron = (b_nominal * 1.01)[order]
    dirs_chron = -(dirs_nominal + 0.02)[order]  # a sign flip and a small tilt
    assigned = assign_by_shell_direction(b_nominal, dirs_nominal, b_chron, dirs_chron)
    np.testing.assert_array_equal(order[assigned], np.arange(6))
    with pytest.raises(ValueError, match=r"2 conditions along direction .* but 1 chronograms"):
        assign_by_shell_direction(b_nominal, dirs_nominal, b_chron[:5], dirs_chron[:5])


def test_invivo_chronograms_in_any_order_within_one_percent(shared_data):
    """The DW-STEAM in vivo chronograms, given shuffled, land on their (shell, direction) and
    give the authors' b-values (with cross terms) within 1 %."""
    from pipeline.io.nifti_mrs import read_nifti_mrs

    acq = read_nifti_mrs(shared_data / "dmrs_7t_steam_invivo/nifti/metab.nii.gz")
    folder = shared_data / "dmrs_7t_steam_invivo/chronogram"
    paths = [str(folder / f"chronogram_G{g}_dir{d}.csv") for g in (15, 25, 35) for d in (1, 2, 3)]
    random.Random(1).shuffle(paths)
    small = Acquisition(acq.fids[:, :1], acq.dwell_s, acq.cf_mhz, acq.b_values_s_mm2,
                        acq.directions, metadata=dict(acq.metadata), source="invivo")
    out = acquisition_with_chronograms(small, paths, "steam")
    for d, published in PUBLISHED_B_S_MM2.items():
        np.testing.assert_allclose(out.b_values_s_mm2[d::3], published, rtol=0.01)
    assert out.metadata["ChronogramFiles"][0] == "chronogram_G15_dir1.csv"
    assert "matched by (shell, direction)" in out.metadata["b_value_units_source"]
    shuffled = acquisition_with_chronograms(small, paths, "steam", assignment="position")
    assert not np.allclose(shuffled.b_values_s_mm2, out.b_values_s_mm2)


@pytest.mark.parametrize("time_name, time_scale, g_name, g_scale, sep", [
    ("time (ms)", 1e3, "G{} [T/m]", 1e-3, ";"),
    ("t_us", 1e6, "G{} (G/cm)", 0.1, "\t"),
    (None, None, "G{}", 1.0, ","),
])
def test_chronogram_csv_spellings_units_and_time_column(tmp_path, time_name, time_scale,
                                                        g_name, g_scale, sep):
    """The same sLASER waveform written with other column names, units, separators and a time
    column (10 us samples, not the 6.4 us default) gives the closed-form b-value."""
    from pipeline.io.chronogram import b_values_from_chronogram

    trace, _, expected = _slaser()
    rf = trace.rf.astype(complex) * np.exp(0.3j)  # stored as real and imaginary parts
    columns = [trace.g[:, k] * g_scale for k in range(3)] + [rf.real, rf.imag]
    names = [g_name.format(a) for a in "xyz"] + ["RF_real", "RF_imag"]
    if time_name:
        columns.insert(0, trace.t * time_scale)
        names.insert(0, time_name)
    path = tmp_path / "chronogram.csv"
    np.savetxt(path, np.column_stack(columns), delimiter=sep, header=sep.join(names),
               comments="")
    result = b_values_from_chronogram(path, "slaser", sample_interval_s=DT_S)
    assert result["b_value_s_mm2"] == pytest.approx(expected, rel=1e-3)
    if time_name:  # the file's own time column wins over a wrong stated interval
        wrong = b_values_from_chronogram(path, "slaser", sample_interval_s=6.4e-6)
        assert wrong["b_value_s_mm2"] == pytest.approx(expected, rel=1e-3)


def test_auto_sequence_comes_from_the_acquisition(tmp_path):
    from pipeline.io.chronogram import b_values_from_chronogram

    trace, _, expected = _slaser()
    path = tmp_path / "c.csv"
    np.savetxt(path, np.column_stack([trace.g, trace.rf]), delimiter=",", header="Gx,Gy,Gz,RF",
               comments="")
    acq = Acquisition(np.zeros((2, 1, 1, 8), complex), 1e-4, 123.2, [0, 300],
                      [[np.nan] * 3, [0, 0, 1]], metadata={"SequenceName": "eja_svs_slaser"})
    out = acquisition_with_chronograms(acq, [str(path)], "auto", sample_interval_s=DT_S)
    assert out.b_values_s_mm2[1] == pytest.approx(expected, rel=1e-3)
    assert out.b_values_s_mm2[1] == b_values_from_chronogram(path, "slaser", DT_S)["b_value_s_mm2"]
