"""The evaluation metrics agree with scikit-learn's (a test-only reference)."""

import functools

import numpy as np
import pytest
from sklearn import metrics as sk

from facelabel.artifact import ATTRIBUTES
from trainer.evaluate import best_thresholds, evaluate_predictions, roc_auc


@pytest.fixture
def predictions():
    """Sparse labels (about 6 % positive, as CelebA's), tied scores included."""
    rng = np.random.default_rng(7)
    labels = (rng.random((400, len(ATTRIBUTES))) < 0.06).astype(int)
    scores = np.clip(0.3 * labels + rng.normal(0.3, 0.2, labels.shape), 0, 1)
    scores[:40] = np.round(scores[:40], 1)  # ties
    return scores, labels


def test_per_attribute_metrics_match_scikit_learn(predictions):
    scores, labels = predictions
    thresholds = [0.35, 0.5, 0.42, 0.6]
    report = evaluate_predictions(scores, labels, thresholds)
    f1s = []
    for column, attribute in enumerate(ATTRIBUTES):
        truth, predicted = labels[:, column], (scores[:, column] >= thresholds[column]).astype(int)
        got = report["attributes"][attribute]
        assert got["auc"] == pytest.approx(sk.roc_auc_score(truth, scores[:, column]), abs=1e-4)
        at = got["at_threshold"]
        close = functools.partial(pytest.approx, abs=1e-4)
        assert at["precision"] == close(sk.precision_score(truth, predicted, zero_division=0))
        assert at["recall"] == pytest.approx(sk.recall_score(truth, predicted), abs=1e-4)
        assert at["f1"] == pytest.approx(sk.f1_score(truth, predicted), abs=1e-4)
        assert at["balanced_accuracy"] == close(sk.balanced_accuracy_score(truth, predicted))
        f1s.append(sk.f1_score(truth, predicted))
    assert report["macro_f1"] == pytest.approx(np.mean(f1s), abs=1e-4)


def test_chosen_thresholds_reach_the_best_f1_scikit_learn_finds(predictions):
    scores, labels = predictions
    for column, threshold in enumerate(best_thresholds(scores, labels)):
        precision, recall, _ = sk.precision_recall_curve(labels[:, column], scores[:, column])
        best = np.max(2 * precision * recall / np.maximum(precision + recall, 1e-12))
        ours = sk.f1_score(labels[:, column], (scores[:, column] >= threshold).astype(int))
        assert ours == pytest.approx(best, abs=1e-9)


def test_auc_needs_both_classes():
    assert roc_auc(np.zeros(5, int), np.linspace(0, 1, 5)) is None


def test_a_resample_of_people_scores_like_copied_faces(predictions):
    """Cross-validation's intervals weight faces by how often their person was drawn: the
    weighted AUC and F1 equal scikit-learn's with sample weights."""
    from trainer.crossval import weighted_auc, weighted_f1

    scores, labels = predictions
    weights = np.random.default_rng(3).integers(0, 4, len(labels))
    for column in range(len(ATTRIBUTES)):
        truth, score = labels[:, column], scores[:, column]
        expected = sk.roc_auc_score(truth, score, sample_weight=weights)
        assert weighted_auc(truth, score, weights) == pytest.approx(expected, abs=1e-12)
        guess = (score >= 0.45).astype(int)
        expected_f1 = sk.f1_score(truth, guess, sample_weight=weights, zero_division=0)
        assert weighted_f1(truth, guess, weights) == pytest.approx(expected_f1, abs=1e-12)
    assert weighted_auc(np.zeros(5, int), np.arange(5.0), np.ones(5)) is None
