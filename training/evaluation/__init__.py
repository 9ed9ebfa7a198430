"""The one evaluation module: splitters and metrics every model and benchmark uses.

- ``splits``: per-user random stratified, per-user temporal leave-last-n, global temporal.
- ``ranking``: precision, recall, nDCG, MAP, hit rate, coverage at k (vectorized).
- ``classification``: AUC, calibration, lift/gain; ``value``: Spearman, normalized Gini, top-decile capture.
"""
