"""Detection metrics (CLEval, IoU-0.5) and classification metrics: `update/compute/reset` accumulators.

Import the module you need (`doclab.metrics.cleval.metric`, `doclab.metrics.iou`, ...): this package
imports nothing, so reading one metric never loads the others.
"""
