"""The per-direction completely-monotone constraint on directional data the app did not make.

The independent dMRS set's opt-in protocol ``pregame_steam7t_dirs``
(``dmrs_validation_support.DIRECTIONAL_PROTOCOLS``): the pregame 7 T STEAM basis, b = 0 plus
4 shells x 3 orthogonal gradient directions, measured lineshape and MM, and per metabolite an
anisotropic decay made here (sticks along 1-3 fibres drawn per participant plus an isotropic
sticks + gamma part), completely monotone in b along each direction and none of the app's
models. The app fits with its own basis and the directions, with the default constraint and
without. Skips when the shared data are absent.
"""

import numpy as np
import pytest

import dmrs_validation_support as dv
import validation_support as vs

PROTOCOL = "pregame_steam7t_dirs"
N_PARTICIPANTS = 3
WEAK = ("tCho", "Ins", "Gln", "Tau")
SINGLETS = ("tNAA", "tCr")
WEAK_FACTOR = 0.9
SINGLET_FACTOR = 1.1


def test_fibre_sticks_match_their_closed_form():
    """One fibre along x: exp(-b D_par) along x, exp(-b D_perp) across it, 1 at b = 0 (NaN
    direction)."""
    b = np.array([0.0, 10.0, 10.0])
    g = np.array([[np.nan] * 3, [1.0, 0, 0], [0, 1.0, 0]])
    s = dv.fibre_sticks(b, g, np.array([[1.0, 0, 0]]), np.array([1.0]), 0.4, 0.01)
    assert s == pytest.approx([1.0, np.exp(-4.0), np.exp(-0.1)], rel=1e-12)


def test_directional_truth_is_anisotropic_and_completely_monotone_along_each_direction():
    """Drawn decays differ between directions (the data are several decays, not one), and
    along each direction they fall and curve upwards (the first two alternating signs of a
    completely monotone function) on a fine b grid."""
    rng = np.random.default_rng(4)
    b, g = dv.directional_protocol()
    assert b.size == 13 and np.all(np.isnan(g[0])) and np.allclose(g[1:] @ g[1:4].T,
                                                                    np.tile(np.eye(3), (4, 1)))
    fine = np.linspace(0.0, 50.0, 201)
    spread = []
    for _ in range(20):
        decay = dv.directional_decays(rng, {"tNAA": dv.draw_decay(rng)})["tNAA"]
        along = np.array([decay(fine, np.tile(d, (fine.size, 1))) for d in dv.IN_VIVO_DIRECTIONS])
        assert np.all(np.diff(along, axis=1) < 0) and np.all(np.diff(along, 2, axis=1) > -1e-12)
        spread.append(np.ptp(decay(b, g)[-3:]))
    assert np.median(spread) > 0.05


@pytest.fixture(scope="module")
def errors(shared_data):
    participants, (source, basis) = dv.protocol_set(shared_data, N_PARTICIPANTS, PROTOCOL, seed=0)
    work = vs.scratch_dir()
    try:
        runner = vs.AppAndLCModel(source, basis, work, use_lcmodel=False)
        out = {}
        for mode in ("joint_free_cm", "joint_free_mm_mono"):
            fits = [dv.fit_participant(runner, p, dv.MODES[mode])[0] for p in participants]
            scores = [dv.score(f, p) for f, p in zip(fits, participants)]
            out[mode] = {group: vs.rms(np.concatenate([s[f"decay_{n}"] for s in scores
                                                       for n in names]))
                         for group, names in (("weak", WEAK), ("singlets", SINGLETS))}
            out[mode]["series"] = {f.fits[1].extra.get("decay_constraint_series") for f in fits}
        print("pooled RMS decay error", out)
    finally:
        vs.remove_dir(work)
    return out


@pytest.mark.slow
def test_per_direction_constraint_holds_one_decay_per_direction(errors):
    assert errors["joint_free_cm"]["series"] == {3}
    assert errors["joint_free_mm_mono"]["series"] == {0}


@pytest.mark.slow
def test_per_direction_constraint_lowers_weak_metabolite_decay_errors(errors):
    """Pooled RMS error of S(b, g)/S(0) of tCho, Ins, Gln, Tau: lower with the constraint.
    The benchmark (``bench_dmrs_modes.py --protocols pregame_steam7t_dirs --modes
    joint_free_cm joint_free_mm_mono``, 16 participants, seeds 0 and 1, SNR 40-150) measured
    constrained / free: tCho 0.034 / 0.038, Ins 0.107 / 0.158, Gln 0.221 / 0.244, Tau 0.154 /
    0.176, Glu 0.188 / 0.195; these 3 participants (seed 0) 0.111 / 0.129 pooled (a 0.86
    ratio against the 0.9 asserted: deterministic with the fixed seed, but a modest margin).
    Glu is left out of the pooled group: its gain over 16 participants (4 %) is below what 3
    can show; it is reported by the benchmark."""
    assert errors["joint_free_cm"]["weak"] <= WEAK_FACTOR * errors["joint_free_mm_mono"]["weak"], \
        errors


@pytest.mark.slow
def test_per_direction_constraint_leaves_singlet_decay_errors_about_unchanged(errors):
    """tNAA and tCr, whose errors here are the basis and lineshape mismatch rather than noise,
    gain nothing: 0.034 / 0.034 and 0.022 / 0.022 constrained / free over the benchmark's 16
    participants; these 3 0.029 / 0.028 pooled. The constraint must not make them worse by
    more than 10 %."""
    assert errors["joint_free_cm"]["singlets"] <= \
        SINGLET_FACTOR * errors["joint_free_mm_mono"]["singlets"], errors
