"""End to end (issue 14), no configuration: the Siemens 7 T STEAM coil set goes from its
NIfTI-MRS files through ``dmrs-bids-convert`` (the installed ``nifti_mrs`` example mapping, no
acquisition parameters) and ``dmrs-bids`` to a report; the Osprey 3 T Philips PRESS set
converted by spec2nii alone (no PulseSequenceType anywhere; the SPAR's scan_id "PRESS PAR 35"
is the header's ProtocolName) runs too."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from bids_app.convert import convert_dataset, example_text, run_spec2nii
from e2e_support import check_runs_to_report, read_tsv, run_app

pytestmark = pytest.mark.slow


def _convert(shared_data, root, extra_sidecar: str = ""):
    mapping = root / "map.toml"
    mapping.write_text(extra_sidecar + example_text("nifti_mrs"))
    convert_dataset(mapping, root / "bids", shared_data / "siemens_7t_steam_coils",
                    log=lambda *_: None)
    return root / "bids"


def test_siemens_coils_nifti_to_report_with_stated_mixing_time(shared_data, tmp_path):
    bids = _convert(shared_data, tmp_path, "[sidecar]\nMixingTime = 0.010\n\n")
    check_runs_to_report(bids, tmp_path, "sub-01_acq-steam_amplitudes.tsv")


OSPREY = "osprey_3t/exampledata/sdat/UnEdited/sub-01/ses-01/mrs"


def _spec2nii_bids(shared_data, root: Path) -> Path:
    """spec2nii outputs in BIDS places with a sidecar holding only what spec2nii's header
    does not (nothing about the sequence)."""
    bids = root / "bids"
    mrs = bids / "sub-01" / "mrs"
    mrs.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(json.dumps(
        {"Name": "osprey PRESS via spec2nii", "BIDSVersion": "1.10.0"}))
    (bids / "participants.tsv").write_text("participant_id\nsub-01\n")
    for kind, folder, stem in (("svs", "sub-01_ses-01_press", "act"),
                               ("mrsref", "sub-01_ses-01_press-ref", "ref")):
        src = shared_data / OSPREY / folder
        files = [next(src.glob(f"*_{stem}.sdat")), next(src.glob(f"*_{stem}.spar"))]
        with tempfile.TemporaryDirectory() as tmp:
            out = run_spec2nii("philips", files, Path(tmp))[0]
            shutil.copyfile(out, mrs / f"sub-01_{kind}.nii.gz")
        (mrs / f"sub-01_{kind}.json").write_text(json.dumps({"WaterSuppression": kind == "svs"}))
    return bids


def _siemens_no_parameters(shared_data, root):
    """No TM anywhere: the basis takes the default TM and the QC file says which key to set."""
    return _convert(shared_data, root), "sub-01_acq-steam_amplitudes.tsv", \
        ("sub-01_acq-steam_qc.json", "STEAM mixing time not stated")


def _osprey_spec2nii(shared_data, root):
    """The sequence is found in the header's ProtocolName (SPAR scan_id)."""
    return _spec2nii_bids(shared_data, root), "sub-01_amplitudes.tsv", \
        ("sub-01_qc.json", "ProtocolName='PRESS PAR 35'")


@pytest.mark.parametrize("make", [_siemens_no_parameters, _osprey_spec2nii])
def test_runs_to_a_report_with_no_configuration(shared_data, tmp_path, make):
    bids, amplitudes, (qc_name, expected) = make(shared_data, tmp_path)
    check_runs_to_report(bids, tmp_path, amplitudes)
    assert expected in (tmp_path / "out" / "sub-01" / "mrs" / qc_name).read_text()
    check_plain_svs(tmp_path / "out", amplitudes.removesuffix("_amplitudes.tsv"))


def check_plain_svs(out: Path, stem: str) -> None:
    """Plain single-voxel MRS (one condition) is first class (issue 14 item 6): the diffusion
    table has its header and no rows, here and at group level; the report has no diffusion
    section and, without transients to align, no drift figure; the methods paragraph claims
    no diffusion modelling and, without transients, no alignment."""
    mrs = out / "sub-01" / "mrs"
    amplitudes = read_tsv(mrs / f"{stem}_amplitudes.tsv")
    assert {r["condition"] for r in amplitudes} == {"0"}
    diffusion = (mrs / f"{stem}_diffusion.tsv").read_text().splitlines()
    assert len(diffusion) == 1 and diffusion[0].startswith("metabolite\tmodel\tparameter")
    transients = read_tsv(mrs / f"{stem}_transients.tsv")
    html = (out / "sub-01.html").read_text()
    assert "Diffusion decays and model parameters" not in html and "-fig-decay" not in html
    run, _ = run_app(out.parent / "bids", out, "group")
    assert run.returncode == 0, run.stderr[-2000:]
    assert len((out / "group_diffusion.tsv").read_text().splitlines()) <= 1
    assert len(read_tsv(out / "group_amplitudes.tsv")) == len(amplitudes)
    methods = (out / "logs" / "CITATION.md").read_text()
    # no claim of diffusion modelling (the QC sentence may cite the dMRS consensus as the
    # source of the transient-rejection limits, which apply to any data with transients)
    assert "decays" not in methods and "modelled" not in methods
    assert "following the dMRS consensus" not in methods
    assert "diffusion condition" not in methods
    figures = {p.name for p in (out / "sub-01" / "figures").iterdir()}
    if len(transients) == 1:  # averaged at the scanner: nothing was aligned
        assert "aligned" not in methods and "rejected" not in methods
        assert "-fig-drift" not in html and f"{stem}_desc-drift_fig.svg" not in figures
        assert "nothing to align" in html
    else:
        assert "transients were aligned in frequency and phase by spectral" in methods
        assert "-fig-drift" in html
