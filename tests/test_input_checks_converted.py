"""The app accepts what its own converter writes (fresh-eyes trial, items 1 and 2):

- user-defined NIfTI-MRS header keys are written as ``{"Value": ..., "Description": ...}``
  (DiffusionGradientDuration, DiffusionTime, ...): the metadata checks read their Value and
  still refuse a Value that is not a number of seconds;
- ``MixingTime = 0`` from a vendor header (spec2nii on a Siemens PRESS ``.rda``) means "no
  mixing time" on any sequence but STEAM; the converter leaves it out, the checks ignore it,
  and a STEAM acquisition with TM = 0 is still refused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robust_support import _edit_json, _edit_svs  # noqa: E402

from bids_app import discovery  # noqa: E402
from bids_app.convert import convert_dataset, example_text  # noqa: E402
from pipeline.io.input_checks import (InputError, header_extension, check_metadata,  # noqa: E402
                                      timing_problems)


def _wrapped(value):
    return {"Value": value, "Description": "as the converter writes user-defined keys"}


def test_user_defined_header_timings_are_read_from_their_value():
    assert timing_problems({"DiffusionGradientDuration": _wrapped(0.015),
                            "DiffusionTime": _wrapped([0.079]),
                            "DiffusionGradientSeparation": _wrapped(0.084)}, "h") == []
    assert timing_problems({"DiffusionGradientDuration": _wrapped(None)}, "h") == []
    assert timing_problems({"DiffusionTime": _wrapped(79.0)}, "h") == \
        ["DiffusionTime (diffusion time) = 79 s is outside (0, 3) s"]
    assert timing_problems({"DiffusionGradientDuration": _wrapped(0.05),
                            "DiffusionGradientSeparation": _wrapped(0.03)}, "h") == \
        ["DiffusionGradientDuration (δ = 0.05 s) is longer than DiffusionGradientSeparation "
         "(Δ = 0.03 s)"]
    for bad in ("15 ms", True, {"nested": 0.015}):
        with pytest.raises(InputError, match="DiffusionGradientDuration .* is not a number of "
                                             "seconds"):
            timing_problems({"DiffusionGradientDuration": _wrapped(bad)}, "h")


def test_zero_mixing_time_means_none_except_for_steam():
    from pipeline.sequences import means_no_mixing_time

    assert means_no_mixing_time(0.0, "press") and means_no_mixing_time([0], "slaser")
    assert means_no_mixing_time(0, None)  # metadata naming no sequence: no TM stated
    assert not means_no_mixing_time(0.0, "steam")
    assert not means_no_mixing_time(0.06, "press") and not means_no_mixing_time(None, "press")
    assert timing_problems({"MixingTime": 0.0}, "h", "press") == []
    assert timing_problems({"MixingTime": 0.0}, "h", "steam") == \
        ["MixingTime (TM) = 0 s is outside (0, 3) s"]
    assert timing_problems({"MixingTime": 60.0}, "h", "press") == \
        ["MixingTime (TM) = 60 s is outside (0, 3) s"]


def test_long_diffusion_times_of_dw_steam_pass_and_echo_times_stay_below_a_second():
    """Long-diffusion-time DW-STEAM: TM, Δ and the diffusion time reach 1-2 s; TE and δ do
    not reach a second (a value there is in ms)."""
    assert timing_problems({"MixingTime": 1.5, "DiffusionGradientSeparation": 1.52,
                            "DiffusionTime": 1.51, "EchoTime": 0.03,
                            "DiffusionGradientDuration": 0.005}, "h", "steam") == []
    assert timing_problems({"EchoTime": 1.5, "DiffusionGradientDuration": 5.0}, "h") == [
        "EchoTime (TE) = 1.5 s is outside (0, 1) s",
        "DiffusionGradientDuration (δ) = 5 s is outside (0, 1) s"]


def _convert(mapping_text: str, source: Path, tmp_path: Path) -> list[Path]:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(mapping_text)
    return convert_dataset(mapping, tmp_path / "bids", source, log=lambda *_: None)


def test_converted_invivo_example_passes_the_metadata_checks(shared_data, tmp_path):
    """The in-vivo example mapping puts DiffusionGradientDuration and DiffusionTime into the
    header as Value/Description entries; discovery (which runs the checks) accepts it."""
    written = _convert(example_text("dmrs_7t_steam_invivo"),
                       shared_data / "dmrs_7t_steam_invivo", tmp_path)
    header = header_extension(written[0])
    assert header["DiffusionGradientDuration"]["Value"] == 0.015
    assert header["DiffusionTime"]["Value"] == 0.079
    sidecar = written[0].with_suffix("").with_suffix(".json")
    check_metadata(written[0], json.loads(sidecar.read_text()), sidecar)
    errors: dict = {}
    assert sorted(discovery.discover(tmp_path / "bids", errors=errors)) == ["01"]
    assert errors == {}


def test_siemens_press_rda_with_zero_mixing_time_is_accepted(shared_data, tmp_path):
    """spec2nii writes MixingTime 0.0 for the PRESS SVS_30.rda: the converter leaves it out,
    and a header that still has it passes the checks, unless the sidecar says STEAM."""
    mapping = ('[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\nformat = "rda"\n'
               'files = ["SVS_30.rda"]\n')
    (svs,) = _convert(mapping, shared_data / "vendor_formats_suspect" / "siemens", tmp_path)
    sidecar_path = svs.with_suffix("").with_suffix(".json")
    sidecar = json.loads(sidecar_path.read_text())
    header = header_extension(svs)
    assert "MixingTime" not in header and "MixingTime" not in sidecar
    assert header["SequenceName"] == "*svs_se" and sidecar["PulseSequenceType"] == "PRESS"
    errors: dict = {}
    assert sorted(discovery.discover(tmp_path / "bids", errors=errors)) == ["01"]
    assert errors == {}
    files = {"svs": svs}
    _edit_svs(files, ext_fn=lambda e: {**e, "MixingTime": 0.0})  # as spec2nii wrote it
    check_metadata(svs, sidecar, sidecar_path)
    _edit_json(sidecar_path, lambda s: {**s, "PulseSequenceType": "STEAM"})
    with pytest.raises(InputError, match=r"\(header\): MixingTime \(TM\) = 0 s is outside"):
        check_metadata(svs, json.loads(sidecar_path.read_text()), sidecar_path)
