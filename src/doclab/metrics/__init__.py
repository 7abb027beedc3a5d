"""Detection metrics: CLEval (the competition's polygon variant and the clovaai package) and
ICDAR 2015 IoU-0.5."""
from doclab.metrics.cleval import CLEvalMetric
from doclab.metrics.evaluate_files import evaluate_ufo
from doclab.metrics.iou import IoUMetric

__all__ = ["CLEvalMetric", "IoUMetric", "evaluate_ufo"]
