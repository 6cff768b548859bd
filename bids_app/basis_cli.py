"""``dmrs-bids-basis``: simulate a metabolite basis set and write it as LCModel ``.BASIS`` or JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from bids_app.config import load_default_config
from pipeline import __version__
from pipeline.basis import Basis
from pipeline.io.basis_formats import write_json_basis, write_lcmodel_basis
from pipeline.sequences import press_bandwidth_note
from pipeline.simulate.basis_simulation import (DEFAULT_METABOLITES, DEFAULT_REFOCUS_CENTRE_PPM,
                                                default_cache_dir, simulate_basis)
from pipeline.simulate.macromolecules import parametric_mm_basis
from pipeline.simulate.sequences import SEQUENCES
from pipeline.spectra import H1_REFERENCE_PPM

DESCRIPTION = """\
Simulate a 1H metabolite basis set from first principles (density matrix of the full J-coupled
Hamiltonian, instantaneous pulses but for PRESS's slice-selective refocusing; spin systems of
Govindaraju et al. 2000 with the Govind et al. 2015 updates) and write it in LCModel .BASIS format
or the project's JSON form. By default it is the basis dmrs-bids simulates itself when no --basis
is given (same timings, and for PRESS the same refocusing, [basis] press_refocus_bandwidth_hz),
so passing it as --basis gives the results of a run without one.

Times are in seconds, frequencies in MHz (spectrometer) and Hz (spectral width, linewidth).
Sequences: fid (pulse-acquire), se (spin echo), press (TE1 + TE2 = TE), steam (TE, TM; only the
stimulated echo), slaser (90 + four ideal 180s, equally spaced over TE unless given).
No line broadening is applied unless --linewidth is given. Simulated spectra are cached on disk.

example:
  dmrs-bids-basis --sequence steam --echo-time 0.045 --mixing-time 0.060 \\
      --spectrometer-frequency 298.06 --spectral-width 3000 --points 1024 -o basis.BASIS
"""

DEFAULT_PRESS_BANDWIDTH_HZ = load_default_config()["basis"]["press_refocus_bandwidth_hz"]
"""The refocusing bandwidth (Hz) of the app's own PRESS basis (``default_config.toml``)."""

OUTPUT_SUFFIXES = {".basis": "lcmodel", ".json": "json"}
"""Output extensions (lower case) and the format each implies when --format is not given."""


def _names(text: str) -> list[str]:
    return [n for n in text.replace(",", " ").split() if n]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dmrs-bids-basis", description=DESCRIPTION,
                                epilog="exit status: 0 written; 2 bad arguments (a one-line "
                                       "message naming the problem, nothing written)",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--sequence", required=True, choices=SEQUENCES,
                   help="pulse sequence to simulate")
    p.add_argument("--echo-time", type=float, default=0.0, metavar="S",
                   help="echo time TE in seconds (default 0; for fid it is an acquisition delay)")
    p.add_argument("--mixing-time", type=float, default=None, metavar="S",
                   help="STEAM mixing time TM in seconds (required for steam)")
    p.add_argument("--te1", type=float, default=None, metavar="S",
                   help="PRESS first echo time in seconds (default min(0.4 TE, 14 ms), as "
                        "vendor sequences; or TE - TE2)")
    p.add_argument("--te2", type=float, default=None, metavar="S",
                   help="PRESS second echo time in seconds (default TE - TE1)")
    p.add_argument("--refocus-bandwidth", type=float, default=None, metavar="HZ",
                   help="PRESS: bandwidth of the slice-selective refocusing pulses in Hz, whose "
                        "chemical-shift displacement changes the J-modulation of coupled spins; "
                        "0 = ideal pulses (default: the app's own, [basis] "
                        f"press_refocus_bandwidth_hz = {DEFAULT_PRESS_BANDWIDTH_HZ:g})")
    p.add_argument("--refocus-centre-ppm", type=float, default=DEFAULT_REFOCUS_CENTRE_PPM,
                   metavar="PPM", help="PRESS: chemical shift the refocusing pulses are centred "
                                       f"on (default {DEFAULT_REFOCUS_CENTRE_PPM:g})")
    p.add_argument("--refocus-times", type=float, nargs="+", default=None, metavar="S",
                   help="semi-LASER: times of the refocusing pulses after the excitation, in "
                        "seconds, an even number with the echo at TE "
                        "(default TE/8 3TE/8 5TE/8 7TE/8)")
    p.add_argument("--spectrometer-frequency", type=float, required=True, metavar="MHZ",
                   help="1H spectrometer (centre) frequency in MHz, e.g. 123.2 (3 T), 298.06 (7 T)")
    p.add_argument("--spectral-width", type=float, required=True, metavar="HZ",
                   help="spectral width in Hz (dwell time = 1 / spectral width)")
    p.add_argument("--points", type=int, required=True, metavar="N",
                   help="number of complex points per FID")
    p.add_argument("--reference-ppm", type=float, default=H1_REFERENCE_PPM, metavar="PPM",
                   help=f"chemical shift of the centre frequency (default {H1_REFERENCE_PPM})")
    p.add_argument("--metabolites", type=_names, default=None, metavar="LIST",
                   help="comma- or space-separated names (default: "
                        + ",".join(DEFAULT_METABOLITES) + "; also available: H2O, Cho, Gly)")
    p.add_argument("--linewidth", type=float, default=0.0, metavar="HZ",
                   help="Lorentzian line broadening FWHM in Hz, >= 0 (default 0: none)")
    p.add_argument("--add-mm", action="store_true",
                   help="append parametric macromolecule components (MM09, MM12, ...)")
    p.add_argument("--format", choices=("lcmodel", "json"), default=None,
                   help="output format (default: from the extension, .BASIS -> lcmodel, "
                        ".json -> json; any other extension needs --format)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help=f"simulation cache folder (default {default_cache_dir()})")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="output file, e.g. basis.BASIS or basis.json")
    return p


def _with_macromolecules(basis: Basis, echo_time_s: float) -> Basis:
    """``basis`` with the parametric MM components appended (same grid, T2-weighted at TE)."""
    mm = parametric_mm_basis(basis.cf_mhz, basis.dwell_s, basis.n_points,
                             echo_time_s=echo_time_s)
    provenance = dict(basis.provenance, macromolecules=mm.provenance)
    return basis.with_entries(mm, provenance)


def _output_format(out: Path, requested: str | None) -> str:
    """The format named by ``--format``, else by the extension (.json or .basis)."""
    if requested:
        return requested
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"{out}: unknown output extension {out.suffix!r}; use .BASIS (LCModel) "
                         "or .json, or state --format")
    return OUTPUT_SUFFIXES[suffix]


WRITERS = {"lcmodel": write_lcmodel_basis, "json": write_json_basis}


def run(args: argparse.Namespace) -> Path:
    """Simulate and write the basis described by parsed ``args``; returns the output path."""
    if not args.spectral_width > 0:  # also refuses nan
        raise ValueError(f"--spectral-width must be positive, got {args.spectral_width} Hz")
    out = Path(args.output)
    if not out.parent.is_dir():
        raise ValueError(f"{out}: output folder {out.parent} does not exist")
    fmt = _output_format(out, args.format)
    timings = {"te1_s": args.te1, "te2_s": args.te2, "refocus_times_s": args.refocus_times}
    if args.sequence == "press":
        bandwidth = DEFAULT_PRESS_BANDWIDTH_HZ if args.refocus_bandwidth is None \
            else args.refocus_bandwidth
        timings.update(refocus_bandwidth_hz=bandwidth,
                       refocus_centre_ppm=args.refocus_centre_ppm)
    elif args.refocus_bandwidth:
        raise ValueError(f"--refocus-bandwidth is for --sequence press, not {args.sequence}")
    basis = simulate_basis(args.sequence, args.spectrometer_frequency, 1.0 / args.spectral_width,
                           args.points, echo_time_s=args.echo_time,
                           mixing_time_s=args.mixing_time, metabolites=args.metabolites,
                           cache_dir=args.cache_dir, ref_ppm=args.reference_ppm,
                           linewidth_hz=args.linewidth, use_cache=not args.no_cache,
                           **{k: v for k, v in timings.items() if v is not None})
    if args.add_mm:
        basis = _with_macromolecules(basis, args.echo_time)
    WRITERS[fmt](basis, out)
    note = press_bandwidth_note(timings.get("refocus_bandwidth_hz", 0.0),
                                args.spectrometer_frequency)
    if note:  # as the app's basis report says of its own PRESS basis
        note = note.replace("[basis] press_refocus_bandwidth_hz", "--refocus-bandwidth")
        print(f"dmrs-bids-basis: warning: {note}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = run(args)
    except (ValueError, OSError) as exc:
        print(f"dmrs-bids-basis: error: {exc}", file=sys.stderr)
        return 2
    print(f"dmrs-bids-basis: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
