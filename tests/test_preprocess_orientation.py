"""Mirrored (complex-conjugated) spectra are detected before fitting (issue 13, item 4).

Truth: the ISMRM 2016 challenge ``.RAW`` files are in the app's sign convention (LCModel fits
them as stored); their complex conjugates are what ``spec2nii raw`` hands the app.
"""

import numpy as np
import pytest

from pipeline.preprocess.orientation import apply_mirror_policy, detect_mirrored

DWELL_S, CF_MHZ = 2.5e-4, 123.2


@pytest.fixture(scope="module")
def challenge_fids(shared_data):
    from pipeline.io.basis_formats import read_lcmodel_raw
    folder = shared_data / "ismrm2016_fitting_challenge" / "datasets_LCModel"
    return {i: read_lcmodel_raw(folder / f"dataset{i}.RAW")[0] for i in range(1, 29)}


def test_every_challenge_spectrum_is_classified_both_ways(challenge_fids):
    wrong = []
    for index, fid in challenge_fids.items():
        stored = detect_mirrored(fid, DWELL_S, CF_MHZ)
        conjugated = detect_mirrored(np.conj(fid), DWELL_S, CF_MHZ)
        if stored.verdict != "as_is" or conjugated.verdict != "mirrored":
            wrong.append((index, stored.verdict, conjugated.verdict))
        assert stored.score_as_is == pytest.approx(conjugated.score_mirrored)
    assert not wrong, f"misclassified (dataset, as stored, conjugated): {wrong}"


def test_fix_policy_restores_the_stored_fid_and_warns(challenge_fids):
    fid = challenge_fids[1]
    water = np.exp(-np.arange(fid.size) * 1e-2) * (1 + 0.5j)
    fixed, fixed_water, verdict = apply_mirror_policy(np.conj(fid), DWELL_S, CF_MHZ,
                                              water_fids=np.conj(water))
    np.testing.assert_array_equal(fixed, fid)
    np.testing.assert_array_equal(fixed_water, water)
    assert verdict.verdict == "mirrored" and "mirrored" in verdict.warning
    same, _, verdict = apply_mirror_policy(fid, DWELL_S, CF_MHZ)
    assert same is fid and verdict.warning == ""


def test_refuse_policy_names_the_problem(challenge_fids):
    with pytest.raises(ValueError, match="mirrored"):
        apply_mirror_policy(np.conj(challenge_fids[2]), DWELL_S, CF_MHZ, policy="refuse")


def test_noise_alone_is_undetermined():
    rng = np.random.default_rng(3)
    noise = rng.normal(size=2048) + 1j * rng.normal(size=2048)
    verdict = detect_mirrored(noise, DWELL_S, CF_MHZ)
    assert verdict.verdict == "undetermined"
    assert "undetermined" in verdict.warning
