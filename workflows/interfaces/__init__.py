"""One thin nipype interface per processing step, grouped by stage; each reads its input
files, calls ``pipeline/`` and writes its outputs in the node's working directory. Options
arrive as canonical JSON strings (sorted keys) so node hashes, and therefore work-directory
reuse, are deterministic.

    conversion  ConvertToCanonical
    preprocess  CombineCoils, EddyCurrentCorrect, AlignTransients, RejectOutliers,
                AverageTransients, RemoveResidualWater
    fit         PrepareBasis, MacromoleculeBasis, FitSpectra
    diffusion   DiffusionModels (a share of the metabolites each), MergeTables
    qc          QualityMetrics
    sink        WriteDerivatives
"""

from .conversion import ConvertToCanonical  # noqa: F401
from .diffusion import DiffusionModels, MergeTables  # noqa: F401
from .fit import FitSpectra, MacromoleculeBasis, PrepareBasis  # noqa: F401
from .preprocess import (AlignTransients, AverageTransients, CombineCoils,  # noqa: F401
                         EddyCurrentCorrect, RejectOutliers, RemoveResidualWater,
                         preprocess_options)
from .qc import QualityMetrics  # noqa: F401
from .sink import WriteDerivatives  # noqa: F401
