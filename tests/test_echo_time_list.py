"""An EchoTime stated as a list of different values is refused, naming the file (review,
2026-12-07): the reader took the first value, so data stated at 40 and 80 ms were simulated
and relaxed at 40 ms with exit 0. A repeated value is one echo time and is read as before.

Truth: the in-vivo 7 T dMRS file of ../shared/data, whose header states TE 40 ms, read with
a sidecar that states the list."""

from __future__ import annotations

import pytest

from pipeline.io.nifti_mrs import NiftiMrsError, read_nifti_mrs

METAB = "dmrs_7t_steam_invivo/nifti/metab.nii.gz"


def test_an_echo_time_list_of_different_values_is_refused_naming_the_file(shared_data):
    path = shared_data / METAB
    with pytest.raises(NiftiMrsError) as err:
        read_nifti_mrs(path, sidecar={"EchoTime": [0.04, 0.08]})
    message = str(err.value)
    assert message.startswith(str(path)) and "EchoTime lists 2 different values" in message
    assert "[0.04, 0.08]" in message and "dim_N_header" in message


@pytest.mark.parametrize("stated", [[0.04], [0.04, 0.04], [0.04, 0.04005]])
def test_one_echo_time_stated_as_a_list_is_read(shared_data, stated):
    """Repeated, or within the 0.1 ms converters round to: one echo time, the data as read
    without the sidecar."""
    path = shared_data / METAB
    plain = read_nifti_mrs(path)
    listed = read_nifti_mrs(path, sidecar={"EchoTime": stated})
    assert (listed.fids == plain.fids).all()
    assert listed.b_values_s_mm2.tolist() == plain.b_values_s_mm2.tolist()
    # one number for every later step (water scaling took float() of the list and failed)
    assert listed.metadata["EchoTime"] == pytest.approx(stated[0])
