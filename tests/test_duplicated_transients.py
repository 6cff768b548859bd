"""Transients stored twice are warned about (metamorphic probe, 2026-12-07). Truth: the
published in-vivo 7 T file untouched (no warning) and with every transient stored twice, as
an export or a concatenation of the same averages would write it. Before, the copies went
through as measurements of their own without a word: amplitudes moved by up to 18 % (tCho
at b = 0 +17 %, Ins +13 %) and the tCho ADC from 0.065 to 0.079 um^2/ms (the CRLBs, from
the averaged spectrum, rightly stayed)."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from pipeline.io.nifti_mrs import read_nifti_mrs

INVIVO = "dmrs_7t_steam_invivo/nifti/metab.nii.gz"


def _stored_twice(source, target) -> None:
    image = nib.load(source)
    data = np.repeat(np.asarray(image.dataobj), 2, axis=4)  # DIM_DYN: each transient twice
    nib.save(type(image)(data, image.affine, image.header), target)


def test_transients_stored_twice_are_named(shared_data, tmp_path):
    target = tmp_path / "metab_twice.nii.gz"
    _stored_twice(shared_data / INVIVO, target)
    acq = read_nifti_mrs(target, b_value_units="s/mm2")
    assert acq.fids.shape[:2] == (10, 48)
    (note,) = [w for w in acq.metadata["warnings"] if "repeat earlier ones" in w]
    assert note.startswith(f"{target}: transients that repeat earlier ones of their condition "
                           "bit for bit in condition(s) 0 (b = 0 s/mm^2: 24 of 48), 1 (b = 907 "
                           "s/mm^2: 24 of 48)")
    assert note.count("24 of 48") == 10


def test_published_transients_are_not_warned_about(shared_data):
    for name, units in ((INVIVO, "s/mm2"), ("dmrs_7t_steam_invivo/nifti/water.nii.gz", "s/mm2"),
                        ("dmrs_7t_steam_synthetic/nifti/synthetic.nii.gz", "ms/um2"),
                        ("siemens_7t_steam_coils/metab_raw.nii.gz", None)):
        acq = read_nifti_mrs(shared_data / name, b_value_units=units)
        assert not any("repeat earlier ones" in w for w in acq.metadata["warnings"]), name


def test_noiseless_and_empty_transients_are_not_judged():
    from pipeline.io.nifti_mrs import duplicated_transient_notes

    fid = np.exp(-np.arange(64) / 10.0).astype(complex)
    b = np.array([0.0])
    assert duplicated_transient_notes(np.tile(fid, (1, 3, 1, 1)), b, "f") == []  # noiseless
    zeros = np.zeros((1, 3, 1, 64), complex)
    zeros[0, 0, 0] = fid
    assert duplicated_transient_notes(zeros, b, "f") == []  # two unacquired (zero) transients
    noisy = np.stack([fid, fid + 0.01, fid]).reshape(1, 3, 1, 64)
    (note,) = duplicated_transient_notes(noisy, b, "f")
    assert "condition(s) 0 (b = 0 s/mm^2: 1 of 3)" in note


def test_copies_are_left_out_of_preprocessing(shared_data, tmp_path):
    """Truth: the published file as stored. Every transient stored twice, preprocessed as the
    app preprocesses (alignment, outliers, averaging): the copies count as not acquired and the
    condition averages are those of the stored file. Before, the copies went in as
    measurements: the b = 0 average moved and amplitudes up to 18 % with it."""
    from datasets import read_invivo_pair

    from pipeline.preprocess.pipeline import preprocess_acquisition

    acq, water = read_invivo_pair(shared_data)
    twice = acq.with_fids(np.repeat(acq.fids, 2, axis=1))
    stored = preprocess_acquisition(acq, water)
    doubled = preprocess_acquisition(twice, water)
    reference = stored.averaged.fids
    assert np.max(np.abs(doubled.averaged.fids - reference)) < 1e-9 * np.max(np.abs(reference))
    acquired = [int(r["acquired"]) for r in doubled.transients]
    assert sum(acquired) == acq.fids.shape[0] * acq.fids.shape[1]
    assert len(acquired) == 2 * sum(acquired)
