"""dMRS fit modes on multi-condition data whose truth the app did not make (issue 13 item 5).

Participants come from ``tests/dmrs_validation_support.py``: other groups' bases (pregame
STEAM 7 T with the published set's b-values 0-50 ms/um^2; ISMRM PRESS 3 T with b up to
10 ms/um^2), measured water-reference lineshapes, measured MM, smooth baselines, residual
water, per-condition frequency/phase drifts, and per-metabolite decays that are none of the
app's parametric models (sticks + gamma-distributed ADC mixtures). Each participant is fitted
by the app (its own simulated basis, parametric MM, residual-water removal, default options)
in every mode of ``MODES``. Prints, per mode and metabolite, the RMS error of S(b)/S(0) over
all b > 0 conditions and participants, the RMS relative error of the b = 0 ratio to tCr, and
the median seconds per participant (measured under whatever load the machine has).
Opt-in protocol ``pregame_steam7t_dirs`` (``dv.DIRECTIONAL_PROTOCOLS``): b = 0 plus 4 shells
x 3 gradient directions, anisotropic decays (sticks along fibres + an isotropic part); its
errors are those of S(b, g)/S(0) and the fit gets the directions::

    nice python benchmarks/bench_dmrs_modes.py --n 8          # 8 participants per protocol
    nice python benchmarks/bench_dmrs_modes.py --protocols pregame_steam7t_dirs \
        --modes joint_free_cm joint_free_mm_mono
"""

from __future__ import annotations

from bench_env import SHARED  # first: one thread before numpy, sys.path

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import dmrs_validation_support as dv
import validation_support as vs

PROTOCOLS = ("pregame_steam7t", "ismrm_press30")


def run(n: int, seed: int, modes, protocols, log=None, snr=(40.0, 150.0)) -> dict:
    """{(protocol, mode): {"scores": [score dicts], "seconds": [...]}}; mode "mono_bias" holds
    the noise-free decay error a mono-exponential up to 5 ms/um^2 makes on the truth (not on
    directional protocols: one mono-exponential in b does not describe several directions)."""
    results = {}
    workdir = Path(vs.scratch_dir())
    for label in protocols:
        participants, (source, basis) = dv.protocol_set(SHARED, n, label, seed=seed,
                                                        snr_range=snr)
        runner = vs.AppAndLCModel(source, basis, workdir, use_lcmodel=False)
        for i, participant in enumerate(participants):
            if participant.directions is None:
                bias = {f"decay_{name}": dv.mono_bias(participant.truth_decay(name),
                                                      participant.b_ms_um2,
                                                      np.inf if name == "MM" else 5.0)
                        for name in dv.DECAY_NAMES}
                record(results, log, (label, "mono_bias", i), bias, 0.0)
            for mode in modes:
                fits, seconds = dv.fit_participant(runner, participant, dv.MODES[mode])
                record(results, log, (label, mode, i), dv.score(fits, participant), seconds)
    vs.remove_dir(workdir)
    return results


def record(results: dict, log, key: tuple, scores: dict, seconds: float) -> None:
    """Add one participant's scores under (protocol, mode) and append them to ``log``."""
    label, mode, i = key
    entry = results.setdefault((label, mode), {"scores": [], "seconds": []})
    entry["scores"].append(scores)
    entry["seconds"].append(seconds)
    if log:
        log.write(json.dumps({"protocol": label, "mode": mode, "i": i, "seconds": seconds,
                              **{k: v.tolist() for k, v in scores.items()}}) + "\n")
        log.flush()


def rms_of(scores, key) -> float:
    values = [s[key] for s in scores if key in s]
    return vs.rms(np.concatenate(values)) if values else float("nan")


def table(results: dict, modes, protocols) -> str:
    lines = []
    for label in protocols:
        lines.append(f"\n## {label}: RMS error of S(b)/S(0) (b > 0; S(b, g)/S(0) along "
                     "directions), RMS rel. error of b=0 ratio to tCr, median s/participant")
        head = "| mode | " + " | ".join(dv.DECAY_NAMES) + " | " + " | ".join(
            f"{n}/tCr" for n in dv.RATIO_NAMES) + " | s |"
        lines += [head, "|" + "---|" * (head.count("|") - 1)]
        for mode in list(modes) + ["mono_bias"]:
            entry = results.get((label, mode))
            if not entry:
                continue
            cells = [f"{rms_of(entry['scores'], 'decay_' + n):.3f}" for n in dv.DECAY_NAMES]
            cells += [f"{rms_of(entry['scores'], 'ratio_' + n):.3f}" for n in dv.RATIO_NAMES]
            cells = [c.replace("nan", "-") for c in cells]
            cells.append(f"{np.median(entry['seconds']):.1f}")
            lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def from_log(path) -> dict:
    results = {}
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        entry = results.setdefault((row["protocol"], row["mode"]), {"scores": [],
                                                                      "seconds": []})
        entry["seconds"].append(row["seconds"])
        entry["scores"].append({k: np.asarray(v) for k, v in row.items()
                                if k.startswith(("decay_", "ratio_"))})
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8, help="participants per protocol")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", nargs="*", default=list(dv.MODES))
    parser.add_argument("--protocols", nargs="*", default=list(PROTOCOLS))
    parser.add_argument("--snr", nargs=2, type=float, default=(40.0, 150.0),
                        help="range of the b = 0 tNAA SNR (log-uniform)")
    parser.add_argument("--log", default="", help="append per-participant JSON lines here")
    parser.add_argument("--summarise", default="", metavar="LOG",
                        help="print the tables from a (possibly partial) --log and exit")
    args = parser.parse_args(argv)
    if args.summarise:
        print(table(from_log(args.summarise), args.modes, args.protocols))
        return 0
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED}", file=sys.stderr)
        return 2
    log = open(args.log, "a") if args.log else None
    results = run(args.n, args.seed, args.modes, args.protocols, log, tuple(args.snr))
    print(table(results, args.modes, args.protocols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
