"""Time of the participant and group reports, and their sizes, on an existing output folder.

    python benchmarks/bench_report.py OUT [--repeat 3]

Rebuilds every ``OUT/sub-*.html`` from the derivatives on disk (figures the workflow drew are
reused, the others drawn) and ``OUT/group.html``; prints seconds per participant (best of
``--repeat``) and file sizes. Target: about 2 s per participant, a 2-participant report
(both pages + group) at most 5 MB.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")


def participant_entries(out: Path, subject: str) -> list[dict]:
    """Index entries of a participant's acquisitions, from the derivative names."""
    from bids_app import derivatives as d
    from bids_app.report import ACQUISITION_KINDS

    entries = []
    for qc in sorted((out / f"sub-{subject}").glob("**/mrs/*_qc.json")):
        stem = qc.name[: -len("_qc.json")]
        session = qc.parent.parent.name[4:] if qc.parent.parent.name.startswith("ses-") \
            else None
        entry = {"subject": subject, "session": session, "stem": stem}
        entry.update({k: str(d.acquisition_path(out, subject, session, stem, k))
                      for k in ACQUISITION_KINDS})
        entries.append(entry)
    return entries


def main(argv=None) -> None:
    from bids_app.group import available_subjects, collect_tables
    from bids_app.group_report import write_group_report
    from bids_app.report import write_participant_report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    subjects = available_subjects(args.out)
    for subject in subjects:
        entries = participant_entries(args.out, subject)
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            report = write_participant_report(args.out, subject, entries)
            times.append(time.perf_counter() - start)
        print(f"sub-{subject}: {min(times):.2f} s (best of {args.repeat}), "
              f"{report.stat().st_size / 1e6:.2f} MB")
    start = time.perf_counter()
    tables, _ = collect_tables(args.out, subjects)
    group = write_group_report(args.out, tables)
    print(f"group: {time.perf_counter() - start:.2f} s, {group.stat().st_size / 1e6:.2f} MB")
    total = sum((args.out / f"sub-{s}.html").stat().st_size for s in subjects)
    print(f"all pages: {(total + group.stat().st_size) / 1e6:.2f} MB for {len(subjects)} "
          "participant(s)")


if __name__ == "__main__":
    main()
