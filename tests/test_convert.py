"""dmrs-bids-convert: vendor files -> MRS-BIDS through spec2nii, checked against the published
NIfTI-MRS files of the pregame dMRS data and by the BIDS validator."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bids_app.convert import (ConversionError, bids_relative_path, bids_validator_errors,
                              convert_dataset, load_mapping, main, split_dynamics)
from pipeline.io.nifti_mrs import read_nifti_mrs

EXAMPLES = Path(__file__).resolve().parents[1] / "bids_app" / "conversion_examples"
SVS = "sub-01/mrs/sub-01_acq-dwsteam_svs.nii.gz"
MRSREF = "sub-01/mrs/sub-01_acq-dwsteam_mrsref.nii.gz"


def _convert_example(name: str, shared_data: Path, tmp_path_factory) -> Path:
    """Convert ../shared/data/<name> with the shipped example mapping; the new BIDS root."""
    out = tmp_path_factory.mktemp("conv") / name
    convert_dataset(EXAMPLES / f"{name}.toml", out, shared_data / name, log=lambda *_: None)
    return out


@pytest.fixture(scope="module")
def synthetic_converted(shared_data, tmp_path_factory):
    return _convert_example("dmrs_7t_steam_synthetic", shared_data, tmp_path_factory)


@pytest.fixture(scope="module")
def invivo_converted(shared_data, tmp_path_factory):
    return _convert_example("dmrs_7t_steam_invivo", shared_data, tmp_path_factory)


def _peak_ratio(acq, ppm_a, ppm_b, half_width_ppm=0.1):
    """Peak magnitude near ppm_a over that near ppm_b (of the mean spectrum)."""
    from pipeline.spectra import fid_to_spectrum
    spectrum = np.abs(fid_to_spectrum(acq.fids.mean(axis=(0, 1, 2))))
    ppm = acq.ppm()
    near = [np.abs(ppm - p) < half_width_ppm for p in (ppm_a, ppm_b)]
    return spectrum[near[0]].max() / spectrum[near[1]].max()


def _read_with_sidecar(path: Path):
    return read_nifti_mrs(path, sidecar=json.loads(path.with_suffix("").with_suffix(".json")
                                                   .read_text()))


def test_synthetic_matches_published_nifti_sample_for_sample(synthetic_converted, shared_data):
    """spec2nii's Philips reader applies no conjugation or scaling beyond what the published
    file (spec2nii 0.3.4) has: the data agree bit for bit once the 288 dynamics are split with
    the b-value varying fastest."""
    ours = _read_with_sidecar(synthetic_converted / SVS)
    published = read_nifti_mrs(shared_data / "dmrs_7t_steam_synthetic/nifti/synthetic.nii.gz")
    assert ours.fids.shape == (9, 32, 1, 1024)
    np.testing.assert_array_equal(ours.fids, published.fids)
    np.testing.assert_array_equal(ours.b_values_s_mm2, published.b_values_s_mm2)
    assert ours.b_values_s_mm2[-1] == 50000
    assert ours.metadata["b_value_units_source"] == \
        "conversion mapping dmrs_7t_steam_synthetic.toml (ms/um2)"
    assert ours.metadata["warnings"] == []
    assert ours.cf_mhz == published.cf_mhz and ours.dwell_s == pytest.approx(published.dwell_s)


def test_synthetic_transient_order_is_not_interchangeable(synthetic_converted, shared_data):
    """The other split (transients fastest) does not reproduce the published data."""
    ours = read_nifti_mrs(synthetic_converted / SVS).fids
    raw = ours.transpose(1, 0, 2, 3).reshape(1, 288, 1, 1024)  # back to acquisition order
    wrong = split_dynamics(raw, 9, "transient_fastest", "x")
    published = read_nifti_mrs(shared_data / "dmrs_7t_steam_synthetic/nifti/synthetic.nii.gz").fids
    assert not np.allclose(wrong, published)
    np.testing.assert_array_equal(split_dynamics(raw, 9, "condition_fastest", "x"), published)


def test_invivo_matches_published_and_links_water(invivo_converted, shared_data):
    for name, published_name, n_trans in ((SVS, "metab", 24), (MRSREF, "water", 4)):
        ours = _read_with_sidecar(invivo_converted / name)
        published = read_nifti_mrs(shared_data / f"dmrs_7t_steam_invivo/nifti/{published_name}.nii.gz")
        assert ours.fids.shape == (10, n_trans, 1, 1024)
        np.testing.assert_array_equal(ours.fids, published.fids)
        np.testing.assert_array_equal(ours.b_values_s_mm2, published.b_values_s_mm2)
        np.testing.assert_array_equal(ours.directions, published.directions)
    sidecar = json.loads((invivo_converted / SVS).with_suffix("").with_suffix(".json").read_text())
    assert sidecar["ReferenceSignal"] == f"bids::{MRSREF}"
    assert sidecar["EchoTime"] == 0.040 and sidecar["DiffusionTime"] == 0.079
    assert sidecar["SpectralWidth"] == pytest.approx(3000.0)
    assert sidecar["NumberOfTransients"] == 240 and sidecar["MagneticFieldStrength"] == 7.0
    assert "PatientName" not in sidecar
    assert (invivo_converted / "participants.tsv").read_text().split() == ["participant_id", "sub-01"]


def test_converted_datasets_pass_bids_validator(synthetic_converted, invivo_converted):
    assert bids_validator_errors(synthetic_converted) == []
    assert bids_validator_errors(invivo_converted) == []


def test_existing_outputs_are_not_overwritten(shared_data, tmp_path):
    out = tmp_path / "bids"
    args = [str(EXAMPLES / "dmrs_7t_steam_synthetic.toml"), str(out), "--source-dir",
            str(shared_data / "dmrs_7t_steam_synthetic"), "-q"]
    assert main(args) == 0
    target = out / SVS
    first_fids = read_nifti_mrs(target).fids
    before = target.read_bytes()
    target.write_bytes(before[:100])  # a user's edit must survive a plain re-run
    assert main(args) == 2
    assert target.read_bytes() == before[:100]
    assert main(args + ["--overwrite"]) == 0
    np.testing.assert_array_equal(read_nifti_mrs(target).fids, first_fids)


@pytest.mark.parametrize("scale, stated, likely", [(1, "ms/um2", "s/mm2"),
                                                    (0.001, "s/mm2", "ms/um2")])
def test_implausible_mapping_b_value_units_are_refused_before_writing(
        shared_data, tmp_path, capsys, scale, stated, likely):
    """b = 907..3956 stated as ms/um2 (or 0.907..3.956 as s/mm2) would be written 1000 times
    too large (small): refused, naming the entry and the likely unit, nothing written."""
    text = (EXAMPLES / "dmrs_7t_steam_invivo.toml").read_text()
    text = text.replace('b_value_units = "s/mm2"', f'b_value_units = "{stated}"')
    for b in (907, 2155, 3956):
        text = text.replace(f" {b},", f" {b * scale:g},").replace(f" {b}]", f" {b * scale:g}]")
    mapping = tmp_path / "map.toml"
    mapping.write_text(text)
    out = tmp_path / "out"
    assert main([str(mapping), str(out), "--source-dir",
                 str(shared_data / "dmrs_7t_steam_invivo"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "acquisition 1 (metab): diffusion b-values" in err and f"in {stated}" in err
    assert f'set diffusion.b_value_units = "{likely}"' in err
    assert not out.exists()


@pytest.mark.parametrize("flags, written", [([], ["sub-01/mrs/sub-01_svs.nii.gz"]),
                                             (["--all-or-nothing"], None)])
def test_unreadable_vendor_file_gives_a_clear_error(shared_data, tmp_path, flags, written):
    """spec2nii fails on this Philips DICOM: the CLI exits 2 naming it, with no traceback.
    The good participant listed before it is written (before, nothing was), unless
    --all-or-nothing asks for the old behaviour."""
    bad = next((shared_data / "vendor_formats_suspect/dicom").rglob("*.dcm"))
    mapping = tmp_path / "map.toml"
    mapping.write_text(
        '[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\nformat = "rda"\n'
        'files = ["vendor_formats_suspect/siemens/SVS_30.rda"]\n'
        '[[acquisition]]\nparticipant = "02"\nsuffix = "svs"\nformat = "philips_dcm"\n'
        f'files = ["{bad.relative_to(shared_data).as_posix()}"]\n')
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "bids_app.convert", str(mapping), str(out),
                          "--source-dir", str(shared_data), *flags],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert str(bad) in run.stderr and "spec2nii philips_dcm could not convert" in run.stderr
    assert "Traceback" not in run.stderr
    if written is None:
        assert not out.exists()
    else:
        assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.nii.gz")) == written
        assert not (out / "sub-02").exists()


def test_every_unreadable_acquisition_is_reported_at_once(tmp_path, capsys):
    """Two bad entries (a missing file, a file that is not Siemens RDA) are both named in one
    error, so a dataset needs one round of fixes; nothing is written."""
    (tmp_path / "garbage.rda").write_bytes(b"not an rda header\n" * 10)
    mapping = tmp_path / "two_bad.toml"
    mapping.write_text(
        '[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\nformat = "rda"\n'
        'files = ["absent.rda"]\n'
        '[[acquisition]]\nparticipant = "02"\nsuffix = "svs"\nformat = "rda"\n'
        'files = ["garbage.rda"]\n')
    assert main([str(mapping), str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "2 of 2 acquisitions cannot be converted (nothing was written)" in err
    assert "acquisition 1" in err and "absent.rda" in err and "input file does not exist" in err
    assert "acquisition 2" in err and "garbage.rda" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, body, problem", [
    ("absent.toml", None, "cannot read the TOML mapping"),
    ("mapping.txt", '[[acquisition]]\nparticipant = "01"\n', "must be a TOML file"),
    ("broken.toml", "not toml [", "cannot read the TOML mapping"),
    ("empty.toml", "x = 1\n", "no [[acquisition]] entries"),
    ("missing_input.toml", '[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\n'
     'format = "rda"\nfiles = ["absent.rda"]\n', "input file does not exist: "),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, name, body, problem):
    mapping = tmp_path / name
    if body is not None:
        mapping.write_text(body)
    assert main([str(mapping), str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert problem in err and str(mapping.name) in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("dmrs-bids-convert: error:")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("body, message", [
    ('participant = "01"\nsuffix = "svs"\nformat = "philips"\nfiles = ["a"]', "takes 2 file"),
    ('participant = "01"\nsuffix = "svs"\nformat = "nope"\nfiles = ["a"]', "nor a spec2nii subcommand"),
    ('participant = "01"\nsuffix = "T1w"\nformat = "rda"\nfiles = ["a"]', "suffix"),
    ('participant = "01"\nsuffix = "svs"\nformat = "rda"\nfiles = ["a"]\nreference = "w"',
     "not the id"),
    ('participant = "01"\nsuffix = "svs"\nformat = "rda"\nfiles = ["a"]\n'
     '[acquisition.dynamics]\nn_conditions = 3\n[acquisition.diffusion]\nb_values = [0, 1]',
     "2 b-values for 3 conditions"),
])
def test_mapping_errors_name_the_entry(tmp_path, body, message):
    mapping = tmp_path / "map.toml"
    mapping.write_text("[[acquisition]]\n" + body + "\n")
    with pytest.raises(ConversionError, match=message) as info:
        load_mapping(mapping)
    assert str(mapping) in str(info.value)


def test_split_dynamics_orders():
    """Dynamic k holds the value k: check where each lands under both orders."""
    fids = np.arange(12, dtype=complex).reshape(1, 12, 1, 1) * np.ones((1, 1, 1, 4))
    cond_fast = split_dynamics(fids, 3, "condition_fastest", "x")
    assert cond_fast.shape == (3, 4, 1, 4)
    assert cond_fast[:, :, 0, 0].real.tolist() == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]]
    trans_fast = split_dynamics(fids, 3, "transient_fastest", "x")
    assert trans_fast[:, :, 0, 0].real.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(ConversionError, match="12 dynamics do not split into 5"):
        split_dynamics(fids, 5, "condition_fastest", "x")


def test_bids_names():
    assert str(bids_relative_path({"participant": "sub-02", "session": "1", "acq": "dw",
                                   "run": 2, "suffix": "mrsref"})) == \
        "sub-02/ses-1/mrs/sub-02_ses-1_acq-dw_run-2_mrsref.nii.gz"
    assert str(bids_relative_path({"participant": "03", "suffix": "mm"})) == \
        "sub-03/mrs/sub-03_acq-mm_svs.nii.gz"


def test_other_vendor_formats_siemens_dicom_rda_and_lcmodel_raw(shared_data, tmp_path):
    """One mapping, three spec2nii readers: the Siemens DICOM and RDA exports of one scan give
    the same samples; an LCModel RAW metabolite/water pair becomes svs + linked mrsref."""
    mapping = tmp_path / "multi.toml"
    raw_args = '["-i", "123.2", "-b", "4000", "-n", "1H"]'
    mapping.write_text(f"""
[[acquisition]]
participant = "01"
run = 1
suffix = "svs"
format = "dicom"
files = ["vendor_formats_suspect/siemens/SVS_30.IMA"]
[[acquisition]]
participant = "01"
run = 2
suffix = "svs"
format = "rda"
files = ["vendor_formats_suspect/siemens/SVS_30.rda"]
[[acquisition]]
id = "metab"
participant = "02"
suffix = "svs"
format = "raw"
files = ["ismrm2016_fitting_challenge/datasets_LCModel/dataset1.RAW"]
spec2nii_args = {raw_args}
reference = "water"
sidecar = {{ EchoTime = 0.030 }}
conjugate = true
[[acquisition]]
id = "water"
participant = "02"
suffix = "mrsref"
format = "raw"
files = ["ismrm2016_fitting_challenge/datasets_LCModel/dataset1.H2O"]
spec2nii_args = {raw_args}
sidecar = {{ EchoTime = 0.030 }}
""")
    out = tmp_path / "bids"
    messages = []
    convert_dataset(mapping, out, shared_data, log=messages.append)
    # the only warnings: LCModel RAW files name no pulse sequence (the user is told the key)
    warned = [m for m in messages if m.startswith("warning")]
    assert len(warned) == 2 and all("no PulseSequenceType written" in m for m in warned)
    dicom = _read_with_sidecar(out / "sub-01/mrs/sub-01_run-1_svs.nii.gz")
    rda = _read_with_sidecar(out / "sub-01/mrs/sub-01_run-2_svs.nii.gz")
    np.testing.assert_array_equal(dicom.fids, rda.fids)
    assert dicom.cf_mhz == rda.cf_mhz == 123.234655 and dicom.metadata["EchoTime"] == 0.03
    metab = _read_with_sidecar(out / "sub-02/mrs/sub-02_svs.nii.gz")
    assert metab.fids.shape == (1, 1, 1, 2048) and metab.dwell_s == pytest.approx(1 / 4000)
    # the challenge RAW files hold the conjugate of LCModel's convention: with `conjugate`
    # NAA (2.01 ppm) stands far above its mirror image about 4.65 ppm (7.29 ppm)
    assert _peak_ratio(metab, 2.01, 7.29) > 5
    assert _peak_ratio(dicom, 2.01, 7.29) > 1.5  # Siemens data need nothing
    sidecar = json.loads((out / "sub-02/mrs/sub-02_svs.json").read_text())
    assert sidecar["ReferenceSignal"] == "bids::sub-02/mrs/sub-02_mrsref.nii.gz"
    rda_sidecar = json.loads((out / "sub-01/mrs/sub-01_run-2_svs.json").read_text())
    assert "MixingTime" not in rda_sidecar and "InstitutionName" not in rda_sidecar
    assert (out / "participants.tsv").read_text().split() == ["participant_id", "sub-01", "sub-02"]
    assert bids_validator_errors(out) == []


def test_validate_flag_exits_0_on_valid_and_1_on_validator_errors(shared_data, tmp_path, capsys):
    mapping = tmp_path / "map.toml"
    mapping.write_text('[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\nformat = "rda"\n'
                       'files = ["vendor_formats_suspect/siemens/SVS_30.rda"]\n')
    args = [str(mapping), "--source-dir", str(shared_data), "--validate"]
    assert main(args[:1] + [str(tmp_path / "good")] + args[1:]) == 0
    assert "is valid" in capsys.readouterr().out
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "dataset_description.json").write_text('{"Name": "no BIDSVersion"}\n')  # kept
    assert main(args[:1] + [str(bad)] + args[1:]) == 1
    err = capsys.readouterr().err
    assert "BIDS validator error: JSON_KEY_REQUIRED /dataset_description.json BIDSVersion" in err
    assert "Traceback" not in err
