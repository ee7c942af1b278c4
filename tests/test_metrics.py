"""Metric formulas on hand-built W with known answers (docs/data_and_models.md)."""

import numpy as np
import pytest

from toysuper import metrics


def polygon(k, d=2):
    """k unit vectors evenly spaced on a circle, in the first two of d dimensions."""
    a = 2 * np.pi * np.arange(k) / k
    W = np.zeros((d, k))
    W[0], W[1] = np.cos(a), np.sin(a)
    return W


def test_orthogonal_features_have_dimensionality_one():
    W = np.eye(3)
    np.testing.assert_allclose(metrics.dimensionality(W), 1.0)
    np.testing.assert_allclose(metrics.superposition(W), 0.0, atol=1e-12)
    np.testing.assert_allclose(metrics.norms(W), 1.0)


def test_antipodal_pair_has_dimensionality_half():
    W = np.array([[0.9, -0.9]])
    np.testing.assert_allclose(metrics.dimensionality(W), 0.5)
    np.testing.assert_allclose(metrics.superposition(W), 0.81)


@pytest.mark.parametrize("k, expected", [(5, 2 / 5), (3, 2 / 3), (4, 1 / 2)])
def test_regular_polygon_in_two_dimensions(k, expected):
    W = polygon(k)
    np.testing.assert_allclose(metrics.dimensionality(W), expected)
    np.testing.assert_allclose(metrics.dims_per_feature(W), expected)


def test_unlearned_feature_has_dimensionality_zero():
    W = np.concatenate([np.eye(2), np.zeros((2, 1))], axis=1)
    D = metrics.dimensionality(W)
    np.testing.assert_allclose(D, [1.0, 1.0, 0.0])
    assert metrics.superposition(W)[2] == 0.0
    # an unlearned feature adds nothing to ||W||_F, so D* counts only the learned ones
    assert metrics.dims_per_feature(W) == pytest.approx(1.0)


def test_tegum_product_of_polytopes_sums_to_dimension():
    # a pentagon in dims 0-1 and a digon in dim 2: D = 2/5 and 1/2, sum D_i = 3 = m
    W = np.zeros((3, 7))
    W[:2, :5] = polygon(5)
    W[2, 5:] = [1.0, -1.0]
    D = metrics.dimensionality(W)
    np.testing.assert_allclose(D, [0.4] * 5 + [0.5] * 2)
    assert D.sum() == pytest.approx(3.0)
