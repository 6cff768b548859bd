"""preprocess stage of the dmrs-bids science core: one module per step, pure array functions.

coils (combine_coils), align (align_conditions, align_transients, align_averages), outliers
(detect_outliers, robust_z), eddy (eddy_current_correct), average (average_transients,
powder_average), water (hlsvd, remove_residual_water), motion (mm_amplitude_check), bvalues
(b-matrices from gradient waveforms); steps (each step of an acquisition as one function
returning its result and flags: the workflow's nodes call these) and pipeline
(PreprocessOptions, preprocess_acquisition: the same steps composed in memory).
"""
