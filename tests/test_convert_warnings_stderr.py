"""dmrs-bids-convert's warnings go to stderr, prefixed "dmrs-bids-convert: warning: ", with or
without -q; -q silences only progress and notes on stdout. Before, warnings went through the
progress printer, so -q hid a header without a pulse sequence or a stale file left from an
earlier conversion, both of which the user must act on."""

from __future__ import annotations

import numpy as np
import pytest

from bids_app.convert import main
from pipeline.acquisition import Acquisition
from pipeline.io.nifti_mrs import write_nifti_mrs

PREFIX = "dmrs-bids-convert: warning: "


def _source_without_sequence(tmp_path):
    """A mapping of one small NIfTI-MRS file whose header names no pulse sequence (the
    converter warns that it writes no PulseSequenceType)."""
    t = np.arange(256) * 2.5e-4
    fid = np.exp(-t / 0.05) * np.exp(2j * np.pi * 50 * t)
    acq = Acquisition(fids=np.tile(fid, (1, 2, 1, 1)), dwell_s=2.5e-4, cf_mhz=297.2,
                      b_values_s_mm2=[0.0], directions=[[np.nan] * 3],
                      metadata={"EchoTime": 0.011})
    write_nifti_mrs(acq, tmp_path / "scan.nii.gz")
    mapping = tmp_path / "m.toml"
    mapping.write_text('[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\n'
                       'files = ["scan.nii.gz"]\n')
    return mapping


def _run(tmp_path, capsys, *flags):
    code = main([*flags, str(_source_without_sequence(tmp_path)), str(tmp_path / "bids")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out, captured.err


@pytest.mark.parametrize("quiet", [["-q"], ["--quiet"], []])
def test_acquisition_warning_is_on_stderr_whatever_quiet(tmp_path, capsys, quiet):
    out, err = _run(tmp_path, capsys, *quiet)
    warned = [line for line in err.splitlines() if "no PulseSequenceType written" in line]
    assert len(warned) == 1 and warned[0].startswith(PREFIX)
    assert "scan.nii.gz" in warned[0]
    assert "no PulseSequenceType written" not in out


def test_quiet_silences_progress_and_notes_only(tmp_path, capsys):
    out, _ = _run(tmp_path / "loud", capsys)
    assert "wrote " in out  # the progress line that -q must silence
    out, err = _run(tmp_path / "quiet", capsys, "-q")
    assert out == ""
    assert err and all(line.startswith(PREFIX) for line in err.splitlines())


def test_file_left_from_an_earlier_conversion_is_warned_with_quiet(tmp_path, capsys):
    stale = tmp_path / "bids" / "sub-01" / "mrs" / "sub-01_acq-old_svs.nii.gz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"")
    _, err = _run(tmp_path, capsys, "-q")
    warned = [line for line in err.splitlines() if str(stale) in line]
    assert len(warned) == 1 and warned[0].startswith(PREFIX)
    assert "was not written by this conversion" in warned[0]
