"""The documented defaults (bids_app/default_config.toml) agree with the constants and
defaults in code, which are defined once (pipeline.metabolites, the option dataclasses)."""

import inspect

from bids_app import config
from pipeline.fitting.options import FitOptions
from pipeline.metabolites import FIT_WINDOW_PPM, PEAK_WINDOWS_PPM
from pipeline.qc.summary import condition_metrics

DOCUMENTED = config.tomllib.loads(config.DEFAULT_CONFIG_PATH.read_text())


def test_fit_window_is_one_value():
    assert tuple(DOCUMENTED["fitting"]["ppm_range"]) == FIT_WINDOW_PPM == FitOptions().ppm_range
    assert tuple(inspect.signature(condition_metrics).parameters["fit_ppm"].default) == \
        FIT_WINDOW_PPM


def test_qc_windows_are_the_peak_windows():
    qc = DOCUMENTED["qc"]
    assert tuple(qc["linewidth_tnaa_ppm"]) == PEAK_WINDOWS_PPM["tNAA"]
    assert tuple(qc["snr_peak_ppm"]) == PEAK_WINDOWS_PPM["tNAA"]
    assert tuple(qc["linewidth_tcr_ppm"]) == PEAK_WINDOWS_PPM["tCr"] == (2.9, 3.1)
    assert tuple(qc["linewidth_water_ppm"]) == PEAK_WINDOWS_PPM["water"]
    defaults = inspect.signature(condition_metrics).parameters
    assert defaults["tcr_ppm"].default == PEAK_WINDOWS_PPM["tCr"]
    assert defaults["tnaa_ppm"].default == PEAK_WINDOWS_PPM["tNAA"]


def test_qc_snr_peak_windows_share_the_peak_windows():
    from pipeline.qc.metrics import SNR_PEAKS_PPM

    for name in ("tNAA", "tCr", "tCho"):
        assert SNR_PEAKS_PPM[name] == PEAK_WINDOWS_PPM[name]


def test_sums_are_one_definition():
    from pipeline.fitting import METABOLITE_SUMS as fitting_sums
    from pipeline.metabolites import METABOLITE_SUMS
    from pipeline.simulate import synthetic

    assert fitting_sums is METABOLITE_SUMS and synthetic.SUMS is METABOLITE_SUMS
    assert METABOLITE_SUMS["tCho"][:2] == ("GPC", "PCh") and "Cho" in METABOLITE_SUMS["tCho"]


def test_fit_noise_window_follows_the_qc_noise_window():
    """``[fitting] noise_sd_ppm = []`` takes ``[qc] noise_ppm``; an explicit value is kept; a
    window that is not two increasing ppm values is refused naming the key."""
    import pytest

    from bids_app.config import ConfigError, load_config

    assert load_config()["fitting"]["noise_sd_ppm"] == []
    follows = load_config(overrides={"qc": {"noise_ppm": [11.0, 14.0]}})
    assert follows["fitting"]["noise_sd_ppm"] == [11.0, 14.0]
    own = load_config(overrides={"qc": {"noise_ppm": [11.0, 14.0]},
                                 "fitting": {"noise_sd_ppm": [-4.0, -2.0]}})
    assert own["fitting"]["noise_sd_ppm"] == [-4.0, -2.0]
    with pytest.raises(ConfigError, match="fitting.noise_sd_ppm"):
        load_config(overrides={"fitting": {"noise_sd_ppm": [3.0, 1.0]}})
