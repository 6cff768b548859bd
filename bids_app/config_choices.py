"""Allowed values of the configuration's choice keys, checked at load.

Each allowed set is the one its consumer checks against (imported, not copied), so the check at
load cannot drift from the code that would otherwise fail, or quietly turn a typo into n/a
rows, per participant after preprocessing and fitting. ``[fitting]`` choices are checked by
``FitOptions`` and ``[preprocessing]`` ones of ``PreprocessOptions`` by that class.
"""

from __future__ import annotations


def choice_table() -> dict:
    """``(section, key) -> (allowed values, normaliser or None)``; a value passes when it is
    allowed or the normaliser (the consumer's own reading of free text) maps it to one."""
    from pipeline.diffusion.fitting import UNCERTAINTY_METHODS
    from pipeline.diffusion.powder import POWDER_METHODS
    from pipeline.fitting.mm_basis import MM_MODES
    from pipeline.io.chronogram import ASSIGNMENTS
    from pipeline.preprocess.bvalues import PULSES_PER_SEQUENCE
    from pipeline.sequences import SEQUENCES, sequence_in_text
    from pipeline.units import B_VALUE_UNITS

    return {
        ("conversion", "b_value_units"): (("auto",) + B_VALUE_UNITS, None),
        ("conversion", "chronogram_sequence"): (("auto",) + tuple(PULSES_PER_SEQUENCE), None),
        ("conversion", "chronogram_assignment"): (ASSIGNMENTS, None),
        ("preprocessing", "powder_method"): (POWDER_METHODS, None),
        ("basis", "sequence"): (("",) + SEQUENCES, sequence_in_text),
        ("macromolecules", "mode"): (("auto",) + MM_MODES, None),
        ("diffusion", "powder_method"): (POWDER_METHODS, None),
        ("diffusion", "uncertainty"): (UNCERTAINTY_METHODS, None),
    }


def choice_problems(config: dict) -> list[str]:
    """Every choice key whose value is not allowed, naming section.key, the value and the
    allowed values."""
    problems = []
    for (section, key), (allowed, normalise) in choice_table().items():
        value = config.get(section, {}).get(key)
        if value is None or value in allowed or (normalise and normalise(value) in allowed):
            continue
        alias = " (or another spelling of one, e.g. 'semiLASER')" if normalise else ""
        problems.append(f"'{section}.{key}' = {value!r} is not one of "
                        f"{', '.join(map(repr, allowed))}{alias}")
    return problems


def preprocess_problems(section: dict) -> list[str]:
    """What ``PreprocessOptions`` (the preprocessing's own check) refuses in
    ``[preprocessing]`` (e.g. ``align_reference``, ``mirror_policy``); its powder keys are the
    workflow's and checked in :func:`choice_problems`."""
    import dataclasses

    from pipeline.preprocess.pipeline import PreprocessOptions

    known = {f.name for f in dataclasses.fields(PreprocessOptions)}
    try:
        PreprocessOptions.from_dict({k: v for k, v in section.items() if k in known},
                                    source="[preprocessing]")
    except (TypeError, ValueError) as error:
        return [str(error)]
    return []


def basis_entry_names(config: dict, basis_path=None) -> list[str] | None:
    """The entries of ``--basis`` (None when it cannot be read: the basis stage refuses it,
    naming the file), else of the simulated basis (``[basis] metabolites`` or the
    simulator's default list)."""
    if basis_path is None:
        from pipeline.simulate.basis_simulation import DEFAULT_METABOLITES
        return list(config.get("basis", {}).get("metabolites") or DEFAULT_METABOLITES)
    from pipeline.io.basis_formats import read_basis_as_stored
    try:
        return list(read_basis_as_stored(basis_path).names)
    except (OSError, ValueError):
        return None


def diffusion_metabolite_problems(config: dict, basis_path=None) -> list[str]:
    """``[diffusion] metabolites`` names that no fit of the basis (:func:`basis_entry_names`,
    or ``[fitting] metabolites`` when given) can produce: not a basis entry, not a sum (tNAA,
    tCr, tCho, Glx, MM), not a macromolecule or lipid component. Checked at start: the
    diffusion stage refused them only after each participant's preprocessing and fit, once per
    diffusion node."""
    from pipeline.fitting.options import is_lipid_name, is_mm_name
    from pipeline.metabolites import SUM_NAMES

    wanted = config.get("diffusion", {}).get("metabolites") or []
    basis_names = basis_entry_names(config, basis_path) if wanted else None
    if basis_names is None:
        return []
    fitted = set(config.get("fitting", {}).get("metabolites") or basis_names)
    unknown = [m for m in wanted if m not in fitted and m not in SUM_NAMES and m != "MM"
               and not is_mm_name(m) and not is_lipid_name(m)]
    if not unknown:
        return []
    return [f"[diffusion] metabolites {unknown} are not fitted: neither a basis entry "
            f"({', '.join(sorted(fitted))}) nor a sum ({', '.join(SUM_NAMES)}, MM) nor a "
            "macromolecule or lipid component"]
