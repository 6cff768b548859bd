"""``dmrs-bids-simulate OUT``: write the built-in demo dataset (synthetic dMRS with ground truth)."""

from __future__ import annotations

import argparse
import sys

from pipeline import __version__

from .demo import write_demo_dataset

DESCRIPTION = """\
Write a small, valid MRS-BIDS dataset of synthetic diffusion-weighted MRS with its ground truth
(the dmrs-bids demo dataset).

Each participant has a diffusion-weighted single-voxel acquisition (sub-XX/mrs/*_svs.nii.gz,
NIfTI-MRS with conditions along DIM_USER_0: b-values in s/mm^2, unit gradient directions) and
an unsuppressed water reference (*_mrsref.nii.gz, linked by the sidecar's ReferenceSignal).
Participants alternate between two designs:
  odd : 3 T (123.2 MHz) PRESS, TE 80 ms, 2000 Hz, b = 0 ... 25 ms/um^2 (25000 s/mm^2), 1 coil
  even: 7 T (298.06 MHz) STEAM, TE 45 ms, TM 60 ms, 3000 Hz, b = 0 then 1 ... 20 ms/um^2 along
        3 directions, 4 coils with correlated noise
Spectra include realistic concentrations (mM), T2 weighting, diffusion decays per metabolite
(D in um^2/ms), parametric macromolecules (ADC 0.008 um^2/ms), residual water, frequency/phase
drift, eddy-current phase, motion-like outlier transients and Gaussian noise (SNR: NAA peak
height of the b=0 transient average / SD of its real noise spectrum).
The basis is simulated by dmrs-bids itself (density matrix) and cached on disk.
Ground truth: OUT/derivatives/truth (a BIDS derivative).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmrs-bids-simulate", description=DESCRIPTION,
        epilog="exit status: 0 written; 2 bad arguments or an unusable OUT (a one-line "
               "message naming the problem)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", metavar="OUT", help="output BIDS dataset folder (created)")
    parser.add_argument("--participants", type=int, default=2, metavar="N",
                        help="number of participants, >= 1; odd ones get the 3 T design, "
                             "even ones the 7 T design (default: 2)")
    parser.add_argument("--seed", type=int, default=0, metavar="SEED",
                        help="random seed, >= 0; equal seeds give bit-identical datasets "
                             "(default: 0)")
    parser.add_argument("--small", action="store_true",
                        help="a quicker dataset: 12 metabolites, fewer b-values, 8 transients "
                             "per condition, 1024 points (used by CI)")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow a non-empty OUT: its sub-* folders and derivatives/truth "
                             "are replaced (default: refuse)")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="basis-simulation cache folder (default: $XDG_CACHE_HOME/"
                             "dmrs-bids/basis or ~/.cache/dmrs-bids/basis)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        written = write_demo_dataset(args.out_dir, participants=args.participants,
                                     seed=args.seed, small=args.small,
                                     overwrite=args.overwrite, cache_dir=args.cache_dir)
    except (ValueError, OSError) as err:
        print(f"dmrs-bids-simulate: error: {err}", file=sys.stderr)
        return 2
    for label, paths in written.items():
        print(f"sub-{label}: {paths['svs']}  (water: {paths['mrsref'].name})")
    print(f"ground truth: {args.out_dir}/derivatives/truth")
    return 0


if __name__ == "__main__":
    sys.exit(main())
