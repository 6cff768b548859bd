"""A link left in the dataset to a file dmrs-bids-convert --overwrite set aside: a sidecar this
conversion did not write (a participant --participant-label left out, another mapping's or a
hand-made JSON) whose ReferenceSignal/MacromoleculeSignal names a scan just moved to set_aside/.
Measured: dmrs-bids then fails that participant at discovery ('... points to ..., which does not
exist'), not a wrong answer, but only at the run, and the conversion had said nothing. Now the
conversion warns, naming the JSON, the key, the link and where the file went; a sidecar the
conversion rewrites is judged as rewritten (no warning for a link it replaced)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_convert_partial import EMPTY, _entry, _scan  # noqa: E402
from test_convert_rerun import _convert, _warnings  # noqa: E402

from bids_app import discovery  # noqa: E402

WATER = "sub-01/mrs/sub-01_mrsref.nii.gz"


def test_a_link_from_outside_the_conversion_to_a_file_set_aside_is_warned_about(
        shared_data, tmp_path, capsys):
    """sub-02 names sub-01's water reference; a hand-made sub-04 sidecar does too. sub-01's
    water input breaks and sub-01 and sub-03 are converted again (--participant-label, sub-02
    left out): sub-01's files move aside and both JSONs are named in a warning."""
    entries = [_entry("01", "mrsref", _scan(tmp_path, "w.nii.gz"), id="water"),
               _entry("02", "svs", _scan(tmp_path, "b.nii.gz"), reference="water"),
               _entry("03", "svs", _scan(tmp_path, "c.nii.gz"))]
    assert _convert(tmp_path, capsys, entries, shared_data)[0] == 0
    out = tmp_path / "bids"
    hand_made = out / "sub-04/mrs/sub-04_svs.json"
    hand_made.parent.mkdir(parents=True)
    hand_made.write_text(json.dumps({"MacromoleculeSignal": f"bids::{WATER}"}))
    entries[0] = _entry("01", "mrsref", EMPTY, id="water")

    code, err, out = _convert(tmp_path, capsys, entries, shared_data, "--overwrite",
                              "--participant-label", "01", "03")

    assert code == 2
    [aside] = (out / "set_aside").iterdir()
    assert (aside / WATER).is_file() and not (out / WATER).exists()
    dangling = [w for w in _warnings(err) if "points to a file just moved" in w]
    sidecar = out / "sub-02/mrs/sub-02_svs.json"
    assert dangling == [
        f"{sidecar}: ReferenceSignal 'bids::{WATER}' points to a file just moved to {aside} "
        "(not current); dmrs-bids will refuse the acquisitions that read this JSON until that "
        "scan is converted again or the link is changed",
        f"{hand_made}: MacromoleculeSignal 'bids::{WATER}' points to a file just moved to "
        f"{aside} (not current); dmrs-bids will refuse the acquisitions that read this JSON "
        "until that scan is converted again or the link is changed"]
    errors: dict = {}
    discovery.discover(out, errors=errors)  # what the warning foretells
    assert errors["02"] == (f"{out / 'sub-02/mrs/sub-02_svs.nii.gz'}: ReferenceSignal "
                            f"'bids::{WATER}' in {sidecar} points to {out / WATER}, which does "
                            "not exist")


def test_a_link_the_conversion_rewrites_is_not_warned_about(shared_data, tmp_path, capsys):
    """sub-02's earlier sidecar named sub-01's water; the mapping now gives sub-02 its own.
    sub-01 breaks and is set aside; sub-02's sidecar is rewritten with the new link: no
    warning (the old sidecar, still on disk when sub-01 moved, would have given one)."""
    entries = [_entry("01", "mrsref", _scan(tmp_path, "w.nii.gz"), id="water"),
               _entry("02", "svs", _scan(tmp_path, "b.nii.gz"), reference="water")]
    assert _convert(tmp_path, capsys, entries, shared_data)[0] == 0
    entries = [_entry("01", "mrsref", EMPTY, id="water"),
               _entry("02", "svs", _scan(tmp_path, "b.nii.gz"), reference="own"),
               _entry("02", "mrsref", _scan(tmp_path, "w2.nii.gz"), id="own")]

    code, err, out = _convert(tmp_path, capsys, entries, shared_data, "--overwrite")

    assert code == 2 and (out / "set_aside").is_dir()
    assert json.loads((out / "sub-02/mrs/sub-02_svs.json").read_text())["ReferenceSignal"] == \
        "bids::sub-02/mrs/sub-02_mrsref.nii.gz"
    assert not [w for w in _warnings(err) if "points to a file just moved" in w]
