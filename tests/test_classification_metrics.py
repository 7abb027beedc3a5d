"""ClassificationMetric against hand-computed accuracy, precision, recall, F1 and confusion matrices."""
import numpy as np
import pytest

from doclab.metrics.classification import ClassificationMetric

CLASSES = ("invoice", "receipt", "letter")
LABELS = np.array([0, 0, 1, 1, 2])
PREDICTED = np.array([0, 1, 1, 1, 0])
# By hand: invoice tp 1 fp 1 fn 1; receipt tp 2 fp 1 fn 0; letter tp 0 fp 0 fn 1.
EXPECTED = {
    "accuracy": 3 / 5,
    "precision/invoice": 0.5, "recall/invoice": 0.5, "f1/invoice": 0.5,
    "precision/receipt": 2 / 3, "recall/receipt": 1.0, "f1/receipt": 0.8,
    "precision/letter": 0.0, "recall/letter": 0.0, "f1/letter": 0.0,
    "macro_f1": (0.5 + 0.8 + 0.0) / 3,
}


def test_scores_match_hand_computed_values():
    metric = ClassificationMetric(CLASSES)
    metric.update(PREDICTED, LABELS)
    scores = metric.compute()
    assert set(scores) == set(EXPECTED)
    for key, value in EXPECTED.items():
        assert scores[key] == pytest.approx(value), key
    assert metric.confusion() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_scores_and_indices_give_the_same_result():
    logits = np.full((5, 3), -1.0)
    logits[np.arange(5), PREDICTED] = 2.0
    from_logits, from_indices = ClassificationMetric(CLASSES), ClassificationMetric(CLASSES)
    from_logits.update(logits, LABELS)
    from_indices.update(PREDICTED, LABELS)
    assert from_logits.compute() == from_indices.compute()


def test_two_updates_equal_one_update():
    whole, parts = ClassificationMetric(CLASSES), ClassificationMetric(CLASSES)
    whole.update(PREDICTED, LABELS)
    parts.update(PREDICTED[:2], LABELS[:2])
    parts.update(PREDICTED[2:], LABELS[2:])
    assert parts.compute() == whole.compute()
    assert parts.confusion() == whole.confusion()


def test_reset_forgets_earlier_batches():
    metric = ClassificationMetric(CLASSES)
    metric.update(PREDICTED, LABELS)
    metric.reset()
    with pytest.raises(ValueError, match="no predictions"):
        metric.compute()
    metric.update(np.array([2, 2]), np.array([2, 2]))
    scores = metric.compute()
    assert scores["accuracy"] == 1.0
    assert scores["f1/letter"] == 1.0
    assert scores["macro_f1"] == pytest.approx(1 / 3)  # the two unseen classes count as 0


def test_unseen_class_lowers_macro_f1():
    metric = ClassificationMetric(CLASSES + ("form",))
    metric.update(PREDICTED, LABELS)
    assert metric.compute()["macro_f1"] == pytest.approx((0.5 + 0.8) / 4)
    assert np.array(metric.confusion()).shape == (4, 4)


@pytest.mark.parametrize("predictions, labels, message", [
    (np.zeros((2, 4)), np.array([0, 1]), "columns"),
    (np.array([0, 1, 2]), np.array([0, 1]), "do not match"),
    (np.array([0, 3]), np.array([0, 1]), "predictions must be class indices"),
    (np.array([0, 1]), np.array([0, -1]), "labels must be class indices"),
])
def test_bad_input_is_refused(predictions, labels, message):
    with pytest.raises(ValueError, match=message):
        ClassificationMetric(CLASSES).update(predictions, labels)
