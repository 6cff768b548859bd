"""Report figures: matplotlib -> deterministic SVG text (no dates, fixed hash salt).

Each function takes plain arrays and returns the SVG as a string, so the report can inline it
and also write it under ``OUT/sub-<label>/figures/``. Plots with many points are rasterized
(one embedded PNG instead of thousands of SVG paths) to keep reports small and fast.
"""

from __future__ import annotations

import io

import numpy as np

from pipeline.metabolites import FIT_WINDOW_PPM

PPM_RANGE = FIT_WINDOW_PPM
SUM_COLOURS = {"tNAA": "tab:blue", "tCr": "tab:orange", "tCho": "tab:green", "Ins": "tab:cyan",
               "Glx": "tab:olive"}
MODEL_STYLES = {"monoexponential": "-", "kurtosis": "--", "biexponential": "-.",
                "sticks": ":", "cylinders": (0, (5, 1)), "stick_sphere": (0, (3, 1, 1, 1))}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # labels from users' files are plain text
    import matplotlib.pyplot as plt

    return plt


def svg_text(fig) -> str:
    """The figure as SVG text, identical across runs; closes the figure."""
    import matplotlib

    plt = _pyplot()
    with matplotlib.rc_context({"svg.hashsalt": "dmrs-bids", "svg.fonttype": "none"}):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None}, dpi=80)
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _ppm_mask(ppm: np.ndarray, ppm_range) -> np.ndarray:
    mask = (ppm >= min(ppm_range)) & (ppm <= max(ppm_range))
    if not mask.any():
        raise ValueError(f"no spectral point inside {list(ppm_range)} ppm "
                         f"(axis {ppm.min():.2f} to {ppm.max():.2f} ppm)")
    return mask


def transients_figure(ppm: np.ndarray, conditions: list[dict], ppm_range=PPM_RANGE) -> str:
    """Real spectra of every transient, before (left) and after (right) alignment, one row
    per condition; kept transients grey with their mean black, rejected ones red, those not
    acquired (exactly zero) left out and counted in the row's label.

    ``conditions``: [{"label", "before" (n_transients, n_points) spectra, "after", "rejected",
    optionally "acquired" (bool per transient; all when absent)}].
    """
    plt = _pyplot()
    if not conditions:
        raise ValueError("transients figure: no condition to plot")
    mask = _ppm_mask(ppm, ppm_range)
    x = ppm[mask]
    n = len(conditions)
    fig, axes = plt.subplots(n, 2, figsize=(7.5, 0.75 + 1.0 * n), sharex=True, squeeze=False)
    for row, cond in zip(axes, conditions):
        taken = np.asarray(cond.get("acquired", np.ones(len(cond["rejected"]))), bool)
        rejected = np.asarray(cond["rejected"], bool) & taken
        kept = taken & ~rejected
        for ax, key in zip(row, ("before", "after")):
            real = np.asarray(cond[key]).real[:, mask]
            ax.plot(x, real[kept].T, color="0.65", lw=0.4, rasterized=True)
            if rejected.any():
                ax.plot(x, real[rejected].T, color="tab:red", lw=0.5, rasterized=True)
            if kept.any():
                ax.plot(x, real[kept].mean(axis=0), color="black", lw=0.7, rasterized=True)
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
        missing = f"\n{int((~taken).sum())} not acq." if not taken.all() else ""
        row[0].set_ylabel(f"{cond['label']}\n{int(rejected.sum())}/{int(taken.sum())} rej."
                          + missing, fontsize=6, rotation=0, ha="right", va="center")
    axes[0, 0].set_title("before alignment", fontsize=8)
    axes[0, 1].set_title("after alignment", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlim(max(ppm_range), min(ppm_range))
        ax.set_xlabel("chemical shift (ppm)", fontsize=7)
    height_in = fig.get_figheight()
    fig.subplots_adjust(left=0.2, right=0.98, wspace=0.05, hspace=0.12,
                        top=1 - 0.3 / height_in, bottom=0.45 / height_in)
    return svg_text(fig)


RESIDUAL_WATER_VIEW_PPM = (1.7, 5.4)
"""Span of the residual-water figure: the water window with room either side, and tNAA (2.0
ppm), the peak the residual water is measured against."""


def residual_water_figure(ppm: np.ndarray, profiles: list[dict], window_ppm,
                          limits: dict | None = None, view_ppm=RESIDUAL_WATER_VIEW_PPM) -> str:
    """Magnitude spectra over the tNAA peak height, one line per condition (ordered colours),
    from ``view_ppm``: the window the residual-water metric reads (shaded) holds its value, the
    largest point there; the QC warning/fail limits (``limits``) as dashed lines.

    ``profiles``: [{"label", "ratio" (magnitude / tNAA height on ``ppm``)}]."""
    plt = _pyplot()
    if not profiles:
        raise ValueError("residual-water figure: no condition to plot")
    mask = _ppm_mask(ppm, view_ppm)
    fig, ax = plt.subplots(figsize=(7.5, 2.4))
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, len(profiles)))
    for profile, colour in zip(profiles, colours):
        ax.plot(ppm[mask], np.asarray(profile["ratio"])[mask], lw=0.6, color=colour,
                label=profile["label"], rasterized=True)
    ax.axvspan(min(window_ppm), max(window_ppm), color="tab:blue", alpha=0.1,
               label=f"measured: {min(window_ppm):g}-{max(window_ppm):g} ppm")
    _limit_lines(ax, limits)
    ax.set_xlim(max(view_ppm), min(view_ppm))
    ax.set_xlabel("chemical shift (ppm)", fontsize=7)
    ax.set_ylabel("|spectrum| / tNAA peak height", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.grid(alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    if len(names) <= 17:
        ax.legend(handles, names, fontsize=5, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  frameon=False, ncol=1 + len(names) // 9)
    fig.tight_layout()
    return svg_text(fig)


DRIFT_MIN_SPAN = {"frequency (Hz)": 1.0, "phase (deg)": 5.0}
"""Smallest y-range of the drift figure's axes (a linewidth's fraction, a few degrees)."""


def _at_least_span(ax, values: np.ndarray, span: float) -> None:
    """Centre the axis on ``values`` with a y-range of at least ``span``."""
    finite = values[np.isfinite(values)]
    if finite.size and np.ptp(finite) < span:
        middle = 0.5 * (finite.max() + finite.min())
        ax.set_ylim(middle - span / 2, middle + span / 2)


def drift_figure(freq_hz: np.ndarray, phase_deg: np.ndarray, rejected: np.ndarray,
                 condition: np.ndarray, labels: dict) -> str:
    """Frequency and phase drift found in every transient (``_transients.tsv``: the
    alignment applied the opposite shift, correction = -drift) in stored order (condition by
    condition; within a condition in acquisition order: an interleaved acquisition's order
    across conditions is not in the data), one colour per condition from an ordered colour map
    (distinct for any number of conditions and never the red of the rejection marks);
    rejected transients marked with a red cross. Each axis spans at least
    :data:`DRIFT_MIN_SPAN` (shifts of ~1e-7 Hz are no drift and must not look like one)."""
    plt = _pyplot()
    freq_hz, phase_deg = np.asarray(freq_hz, float), np.asarray(phase_deg, float)
    rejected, condition = np.asarray(rejected, bool), np.asarray(condition)
    index = np.arange(freq_hz.size)
    fig, axes = plt.subplots(2, 1, figsize=(7.5, 3.2), sharex=True)
    for ax, values, unit in ((axes[0], freq_hz, "frequency (Hz)"),
                             (axes[1], phase_deg, "phase (deg)")):
        _at_least_span(ax, values, DRIFT_MIN_SPAN[unit])
        conditions = np.unique(condition)
        colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, conditions.size))
        for c, colour in zip(conditions, colours):
            sel = condition == c
            ax.plot(index[sel], values[sel], ".", ms=3, color=colour,
                    label=labels.get(c, str(c)))
        ax.plot(index[rejected], values[rejected], "x", ms=6, color="tab:red",
                label="rejected")
        ax.set_ylabel(unit.replace(" (", " drift ("), fontsize=8)  # correction = -drift
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[1].set_xlabel("transient (stored order: condition by condition, each in acquisition "
                       "order)", fontsize=8)
    handles, names = axes[0].get_legend_handles_labels()
    if len(names) <= 16:
        fig.legend(handles, names, fontsize=6, loc="center right", frameon=False,
                   title="condition", title_fontsize=6)
        fig.tight_layout(rect=(0, 0, 0.78, 1))
    else:
        fig.tight_layout()
    return svg_text(fig)


def _fit_panel(ax, panel: dict, mask: np.ndarray, x: np.ndarray) -> None:
    d, f = np.real(panel["data"])[mask], np.real(panel["fit"])[mask]
    scale = max(float(np.max(np.abs(d))), 1e-30)
    ax.plot(x, d, color="0.2", lw=0.6, label="data")
    ax.plot(x, f, color="tab:red", lw=0.7, label="fit")
    if panel.get("baseline") is not None:
        ax.plot(x, np.real(panel["baseline"])[mask], color="tab:purple", lw=0.6,
                label="baseline")
    top = 1.15 * scale
    ax.plot(x, d - f + top, color="0.45", lw=0.5, label="residual (offset up)")
    ax.axhline(top, color="0.85", lw=0.5)
    bottom = -0.45 * scale
    for name, spectrum in (panel.get("components") or {}).items():
        ax.plot(x, np.real(spectrum)[mask] + bottom, lw=0.6, color=SUM_COLOURS.get(name),
                label=f"{name} (offset down)")
    ax.set_ylim(bottom - 0.5 * scale if panel.get("components") else -0.3 * scale,
                top + 0.6 * scale)
    ax.set_yticks([])
    ax.tick_params(labelsize=6)
    ax.set_title(panel["label"], fontsize=7, pad=2)


def column_bottoms(axes: np.ndarray, n_panels: int) -> list:
    """The lowest used panel of each column of a row-major grid holding ``n_panels``: the one
    that must carry the x tick labels and label (with an odd count the right column ends a row
    above the bottom row, whose shared-x labels would otherwise be on an empty, hidden axis)."""
    rows, cols = axes.shape
    return [axes[(n_panels - 1 - col) // cols, col] for col in range(min(cols, n_panels))]


def fit_figure(ppm: np.ndarray, panels: list[dict], ppm_range=PPM_RANGE) -> str:
    """One panel per condition: data, fit, baseline, residual (offset above) and the main
    metabolites (offset below, when given).

    ``panels``: [{"label", "data", "fit", "baseline" or None, "components": {name: spectrum}}]
    with spectra on the ``ppm`` axis.
    """
    plt = _pyplot()
    if not panels:
        raise ValueError("fit figure: no condition to plot")
    mask = _ppm_mask(ppm, ppm_range)
    x = ppm[mask]
    cols = 1 if len(panels) == 1 else 2
    rows = int(np.ceil(len(panels) / cols))
    height_in = 0.6 + 1.6 * rows
    fig, axes = plt.subplots(rows, cols, figsize=(7.5, height_in), squeeze=False,
                             sharex=True)
    for ax, panel in zip(axes.flat, panels):
        _fit_panel(ax, panel, mask, x)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    for ax in axes.flat:
        ax.set_xlim(max(ppm_range), min(ppm_range))
    for ax in column_bottoms(axes, len(panels)):
        ax.xaxis.set_tick_params(labelbottom=True)
        ax.set_xlabel("chemical shift (ppm)", fontsize=7)
    handles, names = axes.flat[0].get_legend_handles_labels()
    ncol = min(len(names), 5)
    fig.legend(handles, names, fontsize=6, loc="upper center", ncol=ncol, frameon=False)
    legend_in = 0.08 + 0.16 * int(np.ceil(len(names) / ncol))
    fig.tight_layout(rect=(0, 0, 1, 1 - legend_in / height_in), h_pad=0.3)
    return svg_text(fig)


MIN_LOG_TICKS = 3
"""Fewest labelled y ticks of a decay panel: with one (a narrow range around 1) no value can be
read off the axis."""


def log_ticks(low: float, high: float, minimum: int = MIN_LOG_TICKS) -> list[float]:
    """Tick values inside [``low``, ``high``] (> 0) of a log axis: matplotlib's 1-2-5, decade,
    1-2-3-5 or 1, 2, 3 … 9 ticks, the first giving ``minimum`` to 8 ticks, else ``minimum``
    geometrically spaced values rounded to the fewest significant figures that keep them
    distinct (a decay within a few percent of 1)."""
    from matplotlib import ticker

    low, high = min(low, high), max(low, high)
    for subs in ((1.0, 2.0, 5.0), (1.0,), (1.0, 2.0, 3.0, 5.0), np.arange(1.0, 10.0)):
        ticks = ticker.LogLocator(subs=subs, numticks=8).tick_values(low, high)
        inside = ticks[(ticks >= low) & (ticks <= high)]
        if minimum <= inside.size <= 8:
            return [float(f"{t:.12g}") for t in inside]
    ticks = np.geomspace(low, high, minimum + 2)[1:-1]
    for digits in range(2, 7):
        rounded = sorted({float(f"{t:.{digits}g}") for t in ticks})
        if len(rounded) == minimum:
            return rounded
    return [float(t) for t in ticks]


def decay_figure(panels: list[dict]) -> str:
    """Diffusion decays on a log scale, one panel per metabolite.

    Each panel: ``name``, ``b_s_mm2``, ``signal`` (S/S0), ``error`` (SD of S/S0) and ``curves``
    {model: (b_s_mm2, S/S0)}; the curves are the fitted models' predictions.
    """
    from matplotlib import ticker

    plt = _pyplot()
    if not panels:
        raise ValueError("decay figure: no metabolite has a decay to plot")
    n = len(panels)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols + 0.6, 1.8 * rows + 0.5),
                             squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        b = np.asarray(panel["b_s_mm2"], float)
        s = np.asarray(panel["signal"], float)
        e = np.nan_to_num(np.asarray(panel["error"], float))
        positive = s > 0
        ax.errorbar(b[positive], s[positive], yerr=np.minimum(e[positive], 0.95 * s[positive]),
                    fmt="o", ms=3, color=SUM_COLOURS.get(panel["name"], "0.2"), capsize=2,
                    elinewidth=0.7)
        for model, (bc, sc) in panel["curves"].items():
            ax.plot(bc, sc, linestyle=MODEL_STYLES.get(model, "-"), color="0.3", lw=0.8,
                    label=model)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.FixedLocator(log_ticks(*ax.get_ylim())))
        ax.yaxis.set_minor_locator(ticker.NullLocator())
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%.6g"))
        ax.set_title(panel["name"], fontsize=8)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("b (s/mm²)", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("S / S0 (log)", fontsize=7)
    legend = {}  # every model drawn in any panel, once, in drawing order
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(name, handle)
    handles, names = list(legend.values()), list(legend)
    if names:
        fig.legend(handles, names, fontsize=7, loc="upper center", ncol=len(names),
                   frameon=False)
    _grid_margins(fig, rows, cols, top_in=0.25 if names else 0.0)
    return svg_text(fig)


def _grid_margins(fig, rows: int, cols: int, top_in: float) -> None:
    """Fixed margins (inches) for a grid of small log-scale panels with titles, tick labels
    and outer axis labels: what ``tight_layout`` finds for them, without the extra drawing pass
    it needs to measure the text (half of the decay figure's time, on the participant's critical
    path). ``top_in``: room above the grid (the legend)."""
    width, height = fig.get_size_inches()
    left, right, bottom, top, gap_x, gap_y = 0.55, 0.1, 0.42, 0.22 + top_in, 0.42, 0.5
    panel_w = (width - left - right - (cols - 1) * gap_x) / cols
    panel_h = (height - bottom - top - (rows - 1) * gap_y) / rows
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=gap_x / panel_w, hspace=gap_y / panel_h)


def _strip(ax, i: int, points: list, odd: set, name_all: bool, rng) -> None:
    """Box (when > 2 values) and jittered points of one column; odd points red and named."""
    values = np.array([v for _, v in points], float)
    finite = np.isfinite(values)
    if finite.sum() > 2:
        ax.boxplot(values[finite], positions=[i], widths=0.5, showfliers=False,
                   medianprops={"color": "0.2"})
    for (who, value), dx in zip(points, rng.uniform(-0.12, 0.12, values.size)):
        flagged = who in odd
        ax.plot(i + dx, value, "o", ms=4 if flagged else 3,
                color="tab:red" if flagged else "tab:blue", alpha=0.9)
        if flagged or name_all:
            ax.annotate(who, (i + dx, value), fontsize=5, xytext=(4, 1),
                        textcoords="offset points",
                        color="tab:red" if flagged else "0.35")


def _unit(unit: str) -> str:
    return {"um^2/ms": "µm²/ms", "1": "dimensionless"}.get(unit, unit)


DISTRIBUTION_WIDTH_IN = 7.5
"""Width of every distribution figure (inches), that of the other group figures: the page
scales each SVG to its width, so a narrower figure (once 3 in for 2 metabolites) had text
drawn 2.5 × larger than its neighbours."""


def distribution_fraction(n_groups: int) -> float:
    """Fraction of the figure width the plot uses: 0.8 in per column plus 1.2 in for the axis
    labels, so a few columns stay compact, left-aligned, at the common text size."""
    return min(1.0, (0.8 * n_groups + 1.2) / DISTRIBUTION_WIDTH_IN)


def distribution_figure(groups: dict, title: str, unit: str, outliers: set | None = None,
                        name_all_below: int = 8) -> str:
    """Values across participants, one column per group (e.g. metabolite or session);
    outlying participants (``outliers``: set of (group, participant)) in red and named; with
    fewer than ``name_all_below`` participants every point is named.

    ``groups``: {group label: [(participant label, value), ...]}.
    """
    plt = _pyplot()
    outliers = outliers or set()
    labels = list(groups)
    if not labels:
        raise ValueError(f"distribution figure {title!r}: no values")
    n_people = max(len(v) for v in groups.values())
    fig, ax = plt.subplots(figsize=(DISTRIBUTION_WIDTH_IN, 2.4))
    rng = np.random.default_rng(0)
    for i, label in enumerate(labels):
        _strip(ax, i, groups[label], {w for g, w in outliers if g == label},
               n_people < name_all_below, rng)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=7, rotation=30 if len(labels) > 5 else 0)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylabel(_unit(unit), fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout(rect=(0, 0, distribution_fraction(len(labels)), 1))
    return svg_text(fig)


def _limit_lines(ax, limits: dict | None) -> None:
    """The QC warning (orange) and fail (red) limits of a panel as labelled dashed lines."""
    for name, color in (("warn", "tab:orange"), ("fail", "tab:red")):
        if limits and limits.get(name) is not None:
            ax.axhline(limits[name], color=color, ls="--", lw=0.8)
            ax.annotate(f"{name} {limits[name]:g}", (1, limits[name]), fontsize=5, color=color,
                        xycoords=("axes fraction", "data"), xytext=(-2, 2),
                        textcoords="offset points", ha="right")


def metrics_grid_figure(panels: list[dict], name_all_below: int = 8) -> str:
    """Small multiples, one per QC metric: ``title``, ``unit``, ``values`` [(who, value)],
    ``outliers`` (set of who) — outlying participants in red and named — and, when given,
    ``limits`` ({"warn", "fail"}) drawn as lines."""
    import textwrap

    plt = _pyplot()
    if not panels:
        raise ValueError("metrics grid: no metric to plot")
    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(7.5, 2.2 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, panel in zip(axes.flat, panels):
        _strip(ax, 0, panel["values"], set(panel.get("outliers", ())),
               len(panel["values"]) < name_all_below, rng)
        _limit_lines(ax, panel.get("limits"))
        ax.margins(y=0.12)  # room for the limit labels above the lines
        ax.set_xlim(-0.6, 0.8)
        ax.set_xticks([])
        ax.set_title("\n".join(textwrap.wrap(panel["title"], 32)), fontsize=8)
        ax.set_ylabel(_unit(panel.get("unit", "")), fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    return svg_text(fig)
