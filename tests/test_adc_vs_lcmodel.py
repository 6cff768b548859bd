"""Peer validation of the in-vivo ADCs: the app's default dMRS fit (joint, shape-free) of the
published 7 T DW-STEAM set against ADCs derived from LCModel fits of the very same per-condition
spectra, both through the app's diffusion stage (``benchmarks/bench_adc_vs_lcmodel.py``).

Criterion: |ADC_app - ADC_LCModel| <= 3 sqrt(SE_app^2 + SE_LCModel^2). Both programs fit the
same averages, so their errors are correlated and the SD of the difference is below the
combined SE: the criterion is lenient, and a failure means a real disagreement. At the SEs
measured (README) it fails for ADC differences beyond about 0.03 (tNAA), 0.04 (tCr),
0.11 (tCho) and 0.15 um^2/ms (Glx). Ins is left out:
the SEs are 40-120 % of the ADC (LCModel's Ins ADC does not differ from 0 by 1 SE), so it
agrees under the criterion without the comparison saying anything.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_adc_vs_lcmodel import (APP_MODES, FOLDER_NAME, combined_se_difference,  # noqa: E402
                                  compare)
from lcmodel_support import lcmodel_available  # noqa: E402

COMPARED = ("tNAA", "tCr", "tCho", "Glx")
MAX_COMBINED_SE = 3.0


@pytest.mark.slow
def test_default_mode_adcs_agree_with_lcmodel_derived_adcs(shared_data, tmp_path):
    if not (shared_data / FOLDER_NAME).is_dir():
        pytest.skip(f"{shared_data / FOLDER_NAME} is absent")
    if not lcmodel_available():
        pytest.skip("LCModel binary not found (set LCMODEL_BINARY; built by "
                    "shared/peers/lcmodel/build.sh)")
    result = compare(shared_data, tmp_path, app_modes=("joint",))
    label = APP_MODES["joint"]
    assert result["mode"][label].startswith("joint"), result["mode"]
    app, lcm = result["adc"][label], result["adc"]["LCModel"]
    for name in COMPARED:
        for program, (adc, se, applicable) in ((label, app[name]), ("LCModel", lcm[name])):
            assert applicable and np.isfinite(adc) and np.isfinite(se) and se > 0, \
                f"{name}: {program} gives no usable mono-exponential ADC ({adc}, SE {se})"
        z = combined_se_difference(app[name], lcm[name])
        assert abs(z) <= MAX_COMBINED_SE, (
            f"{name}: app ADC {app[name][0]:.4f} +- {app[name][1]:.4f} vs LCModel "
            f"{lcm[name][0]:.4f} +- {lcm[name][1]:.4f} um^2/ms: {z:+.2f} combined SEs")
