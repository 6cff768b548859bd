"""Issue 17 items 4, 5 and 15 (metadata): header/sidecar contradictions and unphysical timings
fail the participant naming the file and key; the water reference must be unsuppressed water
and not the metabolite file; a reference expected but not found is a warning naming what was
looked for."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import (_edit_json, _edit_svs, copy_good, demo, demo_master,  # noqa: E402,F401
                            _without, paths)

from bids_app import discovery  # noqa: E402
from bids_app.input_checks import InputError, check_metadata, check_water_reference  # noqa: E402
from pipeline.qc.reference import water_dominance, water_height, water_reference_problem  # noqa: E402


def _sidecar(p: dict, **changes) -> None:
    _edit_json(p["svs_json"], lambda s: {**s, **changes})


CASES = {
    "freq": (dict(SpectrometerFrequency=[127.7]), ["SpectrometerFrequency", "123.2", "127.7"]),
    "points": (dict(NumberOfSpectralPoints=2048), ["NumberOfSpectralPoints", "2048", "1024"]),
    "width": (dict(SpectralWidth=4000.0), ["SpectralWidth", "4000"]),
    "delta": (dict(DiffusionGradientDuration=5.0), ["DiffusionGradientDuration", "(0, 1) s"]),
    "bigdelta": (dict(DiffusionGradientSeparation=-1.0), ["DiffusionGradientSeparation"]),
    "order": (dict(DiffusionGradientDuration=0.05, DiffusionGradientSeparation=0.03),
              ["longer than"]),
    "te": (dict(EchoTime=80), ["EchoTime", "(0, 1) s"]),
    "tetext": (dict(EchoTime="80 ms"), ["EchoTime", "'80 ms'", "not a number of seconds"]),
    "field": (dict(MagneticFieldStrength=11.7),  # the demo's 123.2 MHz is 2.89 T (stated 3)
              ["MagneticFieldStrength 11.7 T", "123.2 MHz (2.89 T for 1H)"]),
}


def test_contradictions_and_unphysical_timings_fail_the_participant(demo):
    for label, (changes, _) in CASES.items():
        _sidecar(copy_good(demo, label), **changes)
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert sorted(found) == ["01", "02"] and sorted(errors) == sorted(CASES)
    for label, (_, words) in CASES.items():
        assert str(paths(demo, label)["svs"]) in errors[label]
        assert str(paths(demo, label)["svs_json"]) in errors[label]
        assert all(w in errors[label] for w in words), errors[label]


def test_header_timings_are_checked_too(demo):
    p = copy_good(demo, "hdr")
    _edit_svs(p, ext_fn=lambda e: {**e, "MixingTime": 60.0})  # ms written as s
    with pytest.raises(InputError, match=r"\(header\).*MixingTime \(TM\) = 60 s"):
        check_metadata(p["svs"], json.loads(p["svs_json"].read_text()))


def test_the_metabolite_file_is_not_a_water_reference(demo):
    p = paths(demo, "01")
    check_water_reference(p["svs"], p["ref"])  # the real reference passes
    with pytest.raises(InputError, match="is the metabolite file"):
        check_water_reference(p["svs"], p["svs"])
    copy = p["ref"].with_name("sub-01_acq-copy_mrsref.nii.gz")
    shutil.copyfile(p["svs"], copy)
    with pytest.raises(InputError, match="is the metabolite file"):
        check_water_reference(p["svs"], copy)
    # via the sidecar, as in the issue: the participant fails, naming the reference
    _sidecar(p, ReferenceSignal="bids::sub-01/mrs/sub-01_acq-dwpress_svs.nii.gz")
    errors: dict = {}
    discovery.discover(demo, errors=errors)
    assert "the water reference is the metabolite file" in errors["01"]


def test_a_water_suppressed_reference_is_refused(demo):
    """A reference whose data are the metabolite data scaled (suppressed water, different
    bytes) is refused; the true reference is not."""
    p = paths(demo, "01")
    fake = p["ref"].with_name("sub-01_acq-fake_mrsref.nii.gz")
    shutil.copyfile(p["svs"], fake)
    _edit_svs({"svs": fake}, lambda d: d * 3.0)
    with pytest.raises(InputError, match="looks water-suppressed") as err:
        check_water_reference(p["svs"], fake)
    assert str(fake) in str(err.value)


def test_water_dominance_separates_water_from_suppressed_spectra():
    """Analytic Lorentzians at 3 T (half-width 2 Hz): with water 1000x NAA the tallest point
    of the metabolite window is the water line's magnitude tail at 3.4 ppm, so the ratio is
    offset / half-width (about 77); suppressed water at 0.5x NAA gives 0.5."""
    n, dwell_s, cf_mhz = 2048, 1 / 2000, 123.2
    t = np.arange(n) * dwell_s

    def line(ppm, amplitude):
        # the package's convention (pipeline.spectra.ppm_axis): f = (4.65 ppm - ppm) * cf
        return amplitude * np.exp(2j * np.pi * (4.65 - ppm) * cf_mhz * t - np.pi * 4.0 * t)

    water = line(4.65, 1000.0) + line(2.01, 1.0)
    suppressed = line(4.65, 0.5) + line(2.01, 1.0)
    half_width_hz, offset_hz = 2.0, (4.65 - 3.4) * cf_mhz
    tail = 1000.0 * half_width_hz / np.hypot(offset_hz, half_width_hz)
    assert water_dominance(water, dwell_s, cf_mhz) == pytest.approx(1000 / tail, rel=0.05)
    assert water_dominance(suppressed, dwell_s, cf_mhz) == pytest.approx(0.5, rel=0.05)
    assert water_reference_problem(1000.0, 0.5) is None
    assert "water-suppressed" in water_reference_problem(0.5, 0.5)
    # a large residual water line in the data (its tail fills the metabolite window): the
    # ratios are close, but the reference's water line is 2000 times the data's
    leaky = line(4.65, 400.0) + line(2.01, 1.0)
    height_ratio = water_height(water, dwell_s, cf_mhz) / water_height(leaky, dwell_s, cf_mhz)
    assert height_ratio == pytest.approx(1000 / 400, rel=0.01)
    assert water_reference_problem(77.0, 60.0, height_over_data=2000.0) is None
    problem = water_reference_problem(77.0, 60.0, height_over_data=height_ratio)
    assert "water line is only 2.5 times" in problem


def test_missing_reference_is_a_warning_naming_what_was_looked_for(demo):
    p = paths(demo, "01")
    _sidecar(p, ReferenceSignal=None)
    other = p["ref"].with_name("sub-01_acq-other_mrsref.nii.gz")
    p["ref"].rename(other)
    p["ref_json"].rename(other.with_name("sub-01_acq-other_mrsref.json"))
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    acquisition = found["01"][0]
    assert errors == {} and acquisition.water is None
    assert len(acquisition.warnings) == 1
    warning = acquisition.warnings[0]
    assert "sub-01_acq-dwpress_mrsref.nii.gz" in warning and other.name in warning
    assert "no water reference" in warning


def test_a_water_reference_of_another_field_is_refused(demo):
    """A reference at 0.4 % off the data's spectrometer frequency (another scanner or field;
    297.0 against 298.06 MHz was accepted before) fails the participant, naming the file; the
    few-ppm receiver offsets of one scan's acquisitions stay allowed."""
    from pipeline.io.input_checks import frequency_mismatch

    p = copy_good(demo, "wf")
    _edit_svs(p, ext_fn=lambda e: {**e, "SpectrometerFrequency": [
        float(np.ravel(e["SpectrometerFrequency"])[0]) * 1.004]}, key="ref")
    _edit_json(p["ref_json"], lambda s: _without(s, "SpectrometerFrequency"))
    errors: dict = {}
    discovery.discover(demo, errors=errors)
    assert str(p["ref"]) in errors["wf"] and "differs by 4000 ppm" in errors["wf"]
    assert frequency_mismatch(298.06, 298.06 * (1 + 3e-6)) is None
    assert "3556 ppm" in frequency_mismatch(298.06, 297.0)


def test_a_reference_signal_pointing_at_another_participant_is_warned(demo):
    p = copy_good(demo, "fr")
    _sidecar(p, ReferenceSignal="bids::sub-01/mrs/" + paths(demo, "01")["ref"].name)
    errors: dict = {}
    found = discovery.discover(demo, errors=errors)
    assert "fr" not in errors
    (warning,) = found["fr"][0].warnings
    assert "is a file of sub-01, not of sub-fr" in warning and str(p["svs"]) in warning


def _nifti_mrs(path: Path, data: np.ndarray) -> Path:
    """An uncompressed NIfTI-MRS file of ``data`` with a minimal header extension."""
    import nibabel as nib

    image = nib.Nifti2Image(data, np.eye(4))
    image.header["pixdim"][4] = 1 / 2000
    meta = {"SpectrometerFrequency": [123.2], "ResonantNucleus": ["1H"]}
    image.header.extensions.append(nib.nifti1.Nifti1Extension(44, json.dumps(meta).encode()))
    nib.save(image, str(path))
    return path


def test_leading_fids_reads_the_fids_stored_first_and_no_further(tmp_path):
    """The discovery-time water check reads a bounded prefix of each file: the FIDs stored
    first (dimensions after the spectral one sliced from the fastest-varying outward), the
    same values as the full array holds there; a file cut after that prefix still reads, so
    nothing beyond it was touched."""
    from pipeline.io.signal_checks import leading_fids

    rng = np.random.default_rng(3)
    shape = (1, 1, 1, 64, 4, 3, 5)
    data = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)
    path = _nifti_mrs(tmp_path / "big.nii", data)
    everything = leading_fids(path, max_fids=10_000)
    assert everything.shape == (60, 64)
    stored_order = np.moveaxis(data[0, 0, 0].reshape(64, -1, order="F"), 0, -1)
    assert np.array_equal(everything, stored_order)
    prefix = leading_fids(path, max_fids=7)  # 4 coils x 1 x 1: the first 4 FIDs stored
    assert np.array_equal(prefix, everything[:4])
    # cut the file just after those 4 FIDs: the prefix still reads, the whole file does not
    import nibabel as nib
    offset = int(nib.load(str(path)).dataobj.offset)
    cut = tmp_path / "cut.nii"
    cut.write_bytes(path.read_bytes()[:offset + 4 * 64 * 8])
    assert np.array_equal(leading_fids(cut, max_fids=7), everything[:4])
    assert leading_fids(cut, max_fids=10_000) is None
    real = _nifti_mrs(tmp_path / "real.nii", data.real.astype(np.float32))
    assert leading_fids(real) is None  # not complex: left to the reader, which names it


def test_a_suppressed_scan_that_dominates_its_own_small_lines_is_no_water_reference():
    """The metabolite-nulled MM scan of Osprey's Philips example: water/metabolite ratio 15.3
    against the data's 3.3 (passes the ratio test) but a water line 0.68 x the data's; given as
    the reference it made tCr 3103 mM. The real reference (318 x) passes."""
    problem = water_reference_problem(15.3, 3.33, height_over_data=0.68)
    assert problem and "only 0.68 times the data's residual water" in problem
    assert water_reference_problem(47.7, 3.33, height_over_data=318.0) is None
    # heights depend on export scaling and summing: a real reference that dominates its own
    # spectrum (51 x; Osprey's 32-coil NIfTI water beside raw SDAT data, 1.92 x the height)
    # still passes
    assert water_reference_problem(51.0, 3.33, height_over_data=1.92) is None


def _lines_fid(n=2048, dwell_s=1 / 5000, delay=0, rng=None):
    """NAA/Cr/Cho-like Lorentzians (and a little noise), optionally delayed by ``delay``
    points of noise as an uncorrected digital-filter group delay leaves them."""
    t = np.arange(n) * dwell_s
    fid = sum(a * np.exp(2j * np.pi * f * t - np.pi * 8.0 * t)
              for a, f in ((3.0, -1060.0), (2.0, -650.0), (1.0, -580.0)))
    rng = rng or np.random.default_rng(0)
    noise = 0.01 * (rng.normal(size=n) + 1j * rng.normal(size=n))
    return np.concatenate([noise[:delay], fid[:n - delay] + noise[delay:]])


def test_a_late_starting_fid_is_recognised():
    from pipeline.io.signal_checks import late_start_problem

    assert late_start_problem(_lines_fid()[None, :]) is None
    assert late_start_problem(_lines_fid(delay=2)[None, :]) is None  # as the 7 T in-vivo set
    problem = late_start_problem(np.stack([_lines_fid(delay=76) for _ in range(4)]))
    assert problem and "largest value at point 76" in problem and "group delay" in problem


def test_discovery_refuses_data_with_an_uncorrected_group_delay(demo):
    """The demo's 3 T data delayed by 76 points (a Bruker group delay left in): the fit read
    it as a huge first-order phase (tCr = tCho = 0, exit 0). Now the participant fails at
    discovery, naming the file and the point the FID peaks at."""
    p = paths(demo, "01")
    def delayed(data):
        out = np.zeros_like(data)
        out[:, :, :, 76:] = data[:, :, :, :-76]  # points are NIfTI-MRS dimension 4
        return out
    _edit_svs(p, delayed)
    errors: dict = {}
    discovery.discover(demo, errors=errors)
    assert str(p["svs"]) in errors["01"] and "largest value at point 76" in errors["01"]


def test_no_real_file_is_refused_by_the_start_and_water_checks(shared_data):
    """The discovery-time checks against other groups' real data: no NIfTI-MRS file in the
    shared data starts late, and the real water references pass as references for their
    metabolite data (Siemens 7 T STEAM coils, the 7 T DW-STEAM in-vivo set)."""
    from pipeline.io.signal_checks import check_fid_start

    files = sorted(shared_data.rglob("*.nii*"))
    assert len(files) > 100
    for path in files:
        check_fid_start(path)  # raises InputError naming a late-starting file
    for data, water in (("siemens_7t_steam_coils/metab_raw.nii.gz",
                         "siemens_7t_steam_coils/wref_raw.nii.gz"),
                        ("dmrs_7t_steam_invivo/nifti/metab.nii.gz",
                         "dmrs_7t_steam_invivo/nifti/water.nii.gz")):
        check_water_reference(shared_data / data, shared_data / water)
        with pytest.raises(InputError, match="looks water-suppressed|metabolite file"):
            check_water_reference(shared_data / water, shared_data / data)  # swapped


def test_discovery_reads_each_file_of_an_acquisition_once(demo):
    """The late-start, water-reference and MM checks all look at the svs (the svs was read
    three times, the water twice): one read per file and acquisition."""
    from pipeline.io import signal_checks

    p = paths(demo, "01")
    signal_checks._leading_fids_of.cache_clear()
    discovery.check_inputs(p["svs"], p["ref"], None)
    info = signal_checks._leading_fids_of.cache_info()
    assert (info.misses, info.hits) == (2, 2)  # svs and water read once; each asked again
