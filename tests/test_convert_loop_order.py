"""dmrs-bids-convert refuses a ``dynamics.order`` the data contradict.

A wrong order converted with exit 0 (the 7 T in-vivo set read transient-fastest gave a tNAA
ADC of 0.023 instead of 0.119 um^2/ms): every "condition" mixed b-values. The check groups the
transients' signal size by condition under each possible nesting of the loops and compares
one-way ANOVA F-ratios. The truth here is independent of the check: the published NIfTI-MRS
files of the pregame sets hold the conditions as their authors split them, and the converter
is fed the same FIDs stored in either order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from bids_app.convert import ConversionError, convert_dataset, main, split_loops
from bids_app.convert_order_check import (check_loop_order, condition_labels, f_ratio,
                                          loop_order_verdict, signal_sizes)
from pipeline.io.nifti_mrs import read_nifti_mrs, write_nifti_mrs

INVIVO_B = [0, 907, 907, 907, 2155, 2155, 2155, 3956, 3956, 3956]
SYNTHETIC_B_MS_UM2 = [0, 1, 3, 6, 10, 20, 30, 40, 50]
CONDITION_FASTEST, TRANSIENT_FASTEST = ["condition", "transient"], ["transient", "condition"]


# --------------------------------------------------------------------------- building blocks

def test_f_ratio_is_the_one_way_anova_of_scipy():
    rng = np.random.default_rng(1)
    values = rng.normal(size=60) + np.repeat([0.0, 0.3, 1.0], 20)
    labels = np.repeat([2, 0, 1], 20)
    f, p = f_ratio(values, labels)
    expected = stats.f_oneway(*(values[labels == g] for g in range(3)))
    assert f == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
    assert f_ratio(np.ones(6), np.repeat([0, 1], 3)) == (0.0, 1.0)  # nothing varies
    assert f_ratio(np.repeat([1.0, 2.0], 3), np.repeat([0, 1], 3))[0] == np.inf


def test_condition_labels_follow_split_loops():
    """Dynamic k goes to condition k % 3 when conditions vary fastest, k // 4 otherwise."""
    np.testing.assert_array_equal(condition_labels(12, CONDITION_FASTEST, {"condition": 3}, "x"),
                                  np.arange(12) % 3)
    np.testing.assert_array_equal(condition_labels(12, TRANSIENT_FASTEST, {"condition": 3}, "x"),
                                  np.arange(12) // 4)
    loops, sizes = ["direction", "b", "transient"], {"direction": 2, "b": 3}
    labels = condition_labels(24, loops, sizes, "x")
    split = split_loops(np.arange(24.0).reshape(1, 24, 1, 1), loops, sizes, "x")[..., 0, 0]
    for condition, dynamics in enumerate(split.real.astype(int)):
        assert set(labels[dynamics]) == {condition}


def test_signal_size_ignores_frequency_and_phase_drift():
    t = np.arange(256) * 3e-4
    fid = np.exp(-t / 0.05 + 2j * np.pi * 120 * t)
    drifted = fid * np.exp(1j * (2 * np.pi * 7.0 * t + 1.1))
    fids = np.stack([fid, drifted, 0.5 * fid])[None, :, None, :]
    sizes = signal_sizes(fids, 3e-4)
    assert sizes[0] == pytest.approx(sizes[1]) and sizes[2] == pytest.approx(0.5 * sizes[0])


def _decaying_dynamics(b_per_condition, n_trans, order, seed=0, noise=0.02):
    """Stored dynamics (1, n_dyn, 1, 256) of a one-line signal exp(-b * 0.1e-3) with noise,
    stored condition-fastest or transient-fastest."""
    rng = np.random.default_rng(seed)
    t = np.arange(256) * 3e-4
    amp = np.exp(-np.asarray(b_per_condition, float) * 1e-4)
    grid = amp[:, None, None] * np.exp(-t / 0.05)[None, None, :] * np.ones((1, n_trans, 1))
    grid = grid + noise * (rng.normal(size=grid.shape) + 1j * rng.normal(size=grid.shape))
    grid = grid * np.exp(1j * rng.uniform(0, 6, size=grid.shape[:2]))[..., None]
    stored = grid.transpose(1, 0, 2) if order == CONDITION_FASTEST else grid
    return stored.reshape(1, -1, 1, 256)


@pytest.mark.parametrize("stated", [CONDITION_FASTEST, TRANSIENT_FASTEST])
def test_simulated_orders_are_told_apart(stated):
    fids = _decaying_dynamics([0, 1000, 3000, 6000], 16, CONDITION_FASTEST)
    check = check_loop_order(fids, 3e-4, stated, {"condition": 4}, [0, 1000, 3000, 6000], "sim")
    assert check.contradicted == (stated == TRANSIENT_FASTEST)
    assert check.other == [l for l in (CONDITION_FASTEST, TRANSIENT_FASTEST) if l != stated][0]


@pytest.mark.parametrize("case", ["one b-value", "one transient per condition", "one condition",
                                  "constant data", "not finite", "two transients"])
def test_nothing_to_tell_apart_stays_silent(case):
    """Correctly stated data with no diffusion contrast, no within-condition spread to
    measure, or degenerate values: the check gives no verdict (None) or one that does not
    refuse, and never crashes."""
    b, n_trans = [0, 1000, 3000], 8
    if case == "one b-value":
        b = [1000, 1000, 1000]
    elif case == "one transient per condition":
        n_trans = 1
    fids = _decaying_dynamics(b, n_trans, CONDITION_FASTEST)
    sizes = {"condition": 3}
    if case == "one condition":
        fids, b, sizes = fids[:, :8], [1000], {"condition": 1}
    elif case == "constant data":
        fids = np.ones_like(fids)
    elif case == "not finite":
        fids[0, 2, 0, 0] = np.nan
    elif case == "two transients":  # far too few to be sure of anything
        fids = _decaying_dynamics(b, 2, CONDITION_FASTEST)
    check = check_loop_order(fids, 3e-4, CONDITION_FASTEST, sizes, b, "sim")
    if case in ("one b-value", "one transient per condition", "one condition", "not finite"):
        assert check is None
    else:
        assert check is None or not check.contradicted
        assert loop_order_verdict(check, "sim", True)[1] == []


def _sizes_as_fids(sizes):
    """Stored dynamics whose signal size is ``sizes`` (one flat FID each)."""
    return (np.asarray(sizes, float)[:, None] * np.ones(256))[None, :, None, :].astype(complex)


@pytest.mark.parametrize("drift", ["linear 20 %", "step 30 % halfway"])
def test_drift_with_a_right_order_warns_but_is_not_refused(drift):
    """A right, interleaved order whose weak b-contrast (5-10 %) rides on slow drift or a step
    in signal size (motion): blocks of transients then group better than the conditions, but
    the stated conditions still differ from one another, so the order is kept with a warning
    (it was refused before)."""
    rng = np.random.default_rng(3)
    if drift == "linear 20 %":
        b, n_trans, contrast = [0, 1000, 1000, 1000], 32, np.array([1.0, 0.95, 0.95, 0.95])
    else:
        b, n_trans, contrast = [0, 1000], 64, np.array([1.0, 0.9])
    n_cond = len(b)
    index = np.arange(n_cond * n_trans)
    trend = (1 - 0.2 * index / index[-1] if drift == "linear 20 %"
             else np.where(index < index.size // 2, 1.0, 0.7))
    sizes = contrast[index % n_cond] * trend * (1 + 0.02 * rng.standard_normal(index.size))
    fids = _sizes_as_fids(sizes)  # stored condition-fastest: the stated order is right
    check = check_loop_order(fids, 3e-4, CONDITION_FASTEST, {"condition": n_cond}, b, "sim")
    assert check.doubtful and not check.contradicted
    facts, warnings = loop_order_verdict(check, "sim", True)
    assert facts == [] and "may be drift or a step in signal size" in warnings[0]
    wrong = check_loop_order(fids, 3e-4, TRANSIENT_FASTEST, {"condition": n_cond}, b, "sim")
    # the known limit (README): blocks stated on these data group the drift itself, so the
    # check cannot tell that wrong order from drift and stays silent
    assert not (wrong.doubtful or wrong.contradicted)


# --------------------------------------------------------------------------- real data

def _flat_nifti(published, out, stored_order):
    """The published conditions (cond, trans, coils, points) written as one flat series of
    dynamics in ``stored_order`` (a NIfTI-MRS with no condition dimension)."""
    fids = published.fids if stored_order == TRANSIENT_FASTEST else \
        published.fids.transpose(1, 0, 2, 3)
    flat = fids.reshape(1, -1, *published.fids.shape[2:])
    acq = published.with_fids(flat, b_values_s_mm2=[0.0], directions=[[np.nan] * 3])
    write_nifti_mrs(acq, out)
    assert read_nifti_mrs(out).fids.shape == flat.shape  # one condition: the mapping splits it
    return out


def _mapping(tmp_path, file, order, b_values, unit, extra=""):
    mapping = tmp_path / f"{file.stem.split('.')[0]}_{order}.toml"
    mapping.write_text(f"""
[sidecar]
PulseSequenceType = "STEAM"
MixingTime = 0.060
[[acquisition]]
participant = "01"
suffix = "svs"
files = ["{file.name}"]
[acquisition.dynamics]
n_conditions = {len(b_values)}
order = "{order}"
{extra}
[acquisition.diffusion]
b_values = {json.dumps(b_values)}
b_value_units = "{unit}"
""")
    return mapping


EXAMPLES = Path(__file__).resolve().parents[1] / "bids_app" / "conversion_examples"
SETS = [("dmrs_7t_steam_invivo/nifti/metab.nii.gz", INVIVO_B, "s/mm2"),
        ("dmrs_7t_steam_invivo/nifti/water.nii.gz", INVIVO_B, "s/mm2"),
        ("dmrs_7t_steam_synthetic/nifti/synthetic.nii.gz", SYNTHETIC_B_MS_UM2, "ms/um2")]


@pytest.mark.parametrize("name,b_values,unit", SETS, ids=["invivo-metab", "invivo-water",
                                                          "synthetic"])
@pytest.mark.parametrize("stored", ["condition_fastest", "transient_fastest"])
def test_real_data_in_either_storage_order(shared_data, tmp_path, name, b_values, unit, stored):
    """The right order converts (the published conditions come back sample for sample and the
    conversion notes record the statistic); the other order is refused with a message naming
    the file, the stated order, the order the data suggest and both F-ratios."""
    published = read_nifti_mrs(shared_data / name)
    flat = _flat_nifti(published, tmp_path / "flat.nii.gz",
                       CONDITION_FASTEST if stored == "condition_fastest" else TRANSIENT_FASTEST)
    wrong = "transient_fastest" if stored == "condition_fastest" else "condition_fastest"
    messages = []
    out = tmp_path / "right"
    convert_dataset(_mapping(tmp_path, flat, stored, b_values, unit), out, tmp_path,
                    log=messages.append)
    converted = read_nifti_mrs(out / "sub-01/mrs/sub-01_svs.nii.gz")
    np.testing.assert_array_equal(converted.fids, published.fids)
    assert not [m for m in messages if m.startswith("warning") and "order" in m]
    assert any(f'dynamics.order "{stored}" fits the data' in m for m in messages)
    with pytest.raises(ConversionError) as refused:
        convert_dataset(_mapping(tmp_path, flat, wrong, b_values, unit), tmp_path / "wrong",
                        tmp_path, log=lambda *_: None)
    text = str(refused.value)
    assert str(flat) in text and f'dynamics.order "{wrong}" does not fit the data' in text
    assert f'Set dynamics.order = "{stored}"' in text and text.count("F = ") == 2
    assert not (tmp_path / "wrong").exists()


def test_order_the_check_keeps_has_signal_falling_with_b(shared_data):
    """Independent sanity of the statistic: under the order the published file encodes, the
    mean signal size per condition falls as b rises (synthetic set: 9 b-values)."""
    published = read_nifti_mrs(shared_data / "dmrs_7t_steam_synthetic/nifti/synthetic.nii.gz")
    sizes = signal_sizes(published.fids.reshape(1, -1, 1, 1024), published.dwell_s)
    per_condition = sizes.reshape(9, 32).mean(axis=1)
    assert np.all(np.diff(per_condition) < 0)


def test_shipped_sdat_mappings_pass_and_their_wrong_order_exits_2(shared_data, tmp_path, capsys):
    """The Philips SDAT route of the 7 T in-vivo example (metabolite and water): the example
    converts with exit 0; with order = "transient_fastest" dmrs-bids-convert exits 2, names both
    files and writes nothing."""
    example = (EXAMPLES / "dmrs_7t_steam_invivo.toml").read_text()
    assert main([str(EXAMPLES / "dmrs_7t_steam_invivo.toml"), str(tmp_path / "ok"),
                 "--source-dir", str(shared_data / "dmrs_7t_steam_invivo"), "-q"]) == 0
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(example.replace('order = "condition_fastest"', 'order = "transient_fastest"'))
    capsys.readouterr()
    assert main([str(wrong), str(tmp_path / "bad"),
                 "--source-dir", str(shared_data / "dmrs_7t_steam_invivo")]) == 2
    err = capsys.readouterr().err
    assert "metab_raw_act.SDAT" in err and "water_raw_act.SDAT" in err
    assert err.count('dynamics.order "transient_fastest" does not fit the data') == 2
    assert not (tmp_path / "bad").exists()


def test_check_order_false_keeps_the_order_with_a_loud_warning(shared_data, tmp_path):
    """The escape hatch for a user sure of an order the check doubts: converted, and the
    warning (with the statistic) goes to the log and into the file's header warnings."""
    name, b_values, unit = SETS[2]
    published = read_nifti_mrs(shared_data / name)
    flat = _flat_nifti(published, tmp_path / "flat.nii.gz", CONDITION_FASTEST)
    messages = []
    convert_dataset(_mapping(tmp_path, flat, "transient_fastest", b_values, unit,
                             extra="check_order = false"), tmp_path / "out", tmp_path,
                    log=messages.append)
    warned = [m for m in messages if m.startswith("warning") and "does not fit" in m]
    assert len(warned) == 1 and "dynamics.check_order = false" in warned[0]
    header = read_nifti_mrs(tmp_path / "out/sub-01/mrs/sub-01_svs.nii.gz").metadata
    assert any("does not fit the data" in w for w in header["warnings"])


def test_check_order_must_be_a_boolean(tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[[acquisition]]\nparticipant = "01"\nsuffix = "svs"\n'
                       'files = ["a.nii.gz"]\n[acquisition.dynamics]\ncheck_order = "no"\n')
    with pytest.raises(ConversionError, match="check_order must be true or false"):
        convert_dataset(mapping, tmp_path / "out")
