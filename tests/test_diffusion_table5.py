"""Small version of the consensus Table 5 Monte Carlo (full run: benchmarks/bench_diffusion_table5.py)."""

import numpy as np
import pytest

from pipeline.diffusion import fit_all_models, signals
from pipeline.diffusion.models import Cylinders
from pipeline.diffusion.montecarlo import (CONSENSUS_B_MS_UM2, CONSENSUS_BIG_DELTA_MS,
                                           CONSENSUS_SMALL_DELTA_MS, simulate_setting_fits)

B = np.array(CONSENSUS_B_MS_UM2)


@pytest.fixture(scope="module")
def low_noise():
    return simulate_setting_fits([0.3], [2.0], 0.01, 25.0, 250, np.random.default_rng(11))


@pytest.fixture(scope="module")
def high_noise():
    return simulate_setting_fits([0.3], [1.0], 0.04, 25.0, 250, np.random.default_rng(12))


def test_d_intra_unbiased_and_cv_matches_jacobian(low_noise):
    assert abs(low_noise["D_intra"]["bias"][0]) < 0.03
    model = Cylinders(CONSENSUS_SMALL_DELTA_MS, CONSENSUS_BIG_DELTA_MS)
    clean = model.predict(B, (0.3, 2.0))
    predicted_cv = model.fit(B, clean, sigma=0.01).std_errors[0] / 0.3
    assert low_noise["D_intra"]["cv"][0] == pytest.approx(predicted_cv, rel=0.3)


def test_adc_and_kurtosis_unbiased_against_noise_free_fit(low_noise):
    for name in ("ADC", "K_app"):
        cv = low_noise[name]["cv"][0]
        assert abs(low_noise[name]["bias"][0]) < 4 * cv / np.sqrt(250) + 0.01


def test_radius_precision_follows_the_applicability_rule(low_noise, high_noise):
    """R is precise where the rule reports it and unreliable where the rule falls back to sticks."""
    assert low_noise["R"]["cv"][0] < 0.3 and abs(low_noise["R"]["bias"][0]) < 0.1
    assert high_noise["R"]["cv"][0] > 0.5
    for (d, r, sigma), expected in (((0.3, 2.0, 0.01), 1), ((0.3, 1.0, 0.04), 0)):
        clean = signals.cylinders_powder_average(B, d, r, CONSENSUS_SMALL_DELTA_MS, CONSENSUS_BIG_DELTA_MS)
        rows = fit_all_models(B, clean, sigma, models=("cylinders",), n_draws=0,
                              small_delta_ms=CONSENSUS_SMALL_DELTA_MS, big_delta_ms=CONSENSUS_BIG_DELTA_MS)
        (radius,) = [x for x in rows if x["model"] == "cylinders" and x["parameter"] == "radius"]
        assert radius["applicable"] == expected


# --- issue 15 item 4: the paper's cells ------------------------------------------------------

def test_table5_cells_low_noise_match_the_jacobian_prediction():
    """At sigma = 0.002 the estimators are nearly linear: the per-draw relative bias is centred
    on 0 and each setting's CV equals the Jacobian SE / value of the noise-free fit."""
    from pipeline.diffusion.models import MonoExponential
    from pipeline.diffusion.montecarlo import table5_cells
    cells = table5_cells("monoexponential", 5.0, 0.002, [0.3], [1.0], 400, np.random.default_rng(3))
    med, q1, q3 = cells["ADC"]["relative_bias"]
    clean = signals.cylinders_powder_average(B, 0.3, 1.0, CONSENSUS_SMALL_DELTA_MS, CONSENSUS_BIG_DELTA_MS)
    fit = MonoExponential().fit(B, clean, sigma=0.002)
    cv_expected = 100 * fit.std_errors[0] / fit.params[0]
    assert cells["ADC"]["cv"][0] == pytest.approx(cv_expected, rel=0.15)  # 400 draws: SD of SD 3.5 %
    assert abs(med) < 0.3 * cv_expected and q1 < 0 < q3
    assert (q3 - q1) == pytest.approx(2 * 0.6745 * cv_expected, rel=0.2)  # normal IQR


def test_accurate_and_precise_criterion():
    from pipeline.diffusion.montecarlo import accurate_and_precise
    assert accurate_and_precise(-1, -4, 1) and accurate_and_precise(4, 2, 10)
    assert not accurate_and_precise(3, -9, 14) and not accurate_and_precise(-7, -22, -3)


def test_bench_reads_the_paper_table_and_writes_its_columns(shared_data, tmp_path):
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_diffusion_table5.py"
    spec = importlib.util.spec_from_file_location("bench_table5", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    paper = bench.read_table5(shared_data / "dmrs_consensus_table5" / "table5.csv")
    assert len(paper) == 88 and {r["model"] for r in paper} == {"monoexponential", "kurtosis", "cylinders"}
    ours = {(r["statistic"], r["model"], r["b_max_ms_um2"], r["parameter"], r["sigma"]): (1.0, 0.0, 2.0)
            for r in paper}
    out = tmp_path / "ours.tsv"
    bench.write_tsv(out, paper, ours)
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == list(bench.COLUMNS) and len(lines) == 89
    assert lines[1].split("\t")[:5] == ["relative_bias", "monoexponential", "5", "ADC", "0.01"]


def test_cramer_rao_cv_matches_the_monte_carlo_cv_in_the_linear_regime():
    """At sigma = 0.002 the kurtosis fit is nearly linear: its Monte Carlo CV of ADC and K_app
    equals the Cramer-Rao bound the benchmark prints beside the paper's kurtosis ADC CV."""
    from pipeline.diffusion.montecarlo import cramer_rao_cv_percent, table5_cells
    crlb = cramer_rao_cv_percent("kurtosis", 5.0, 0.002, [0.3], [1.0])
    cells = table5_cells("kurtosis", 5.0, 0.002, [0.3], [1.0], 400, np.random.default_rng(5), fit_s0=False)
    for name in ("ADC", "Kapp"):
        assert cells[name]["cv"][0] == pytest.approx(crlb[name][0], rel=0.15)  # SD of an SD: 3.5 %
