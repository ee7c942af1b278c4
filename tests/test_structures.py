"""Structure labels on hand-built arrangements of features (docs/geometry.md)."""

import numpy as np
import pytest

from toysuper import metrics, structures


def polygon(k):
    """k unit vectors at equal angles in a plane (2 x k)."""
    a = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(a), np.sin(a)])


def tetrahedron():
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float).T
    return v / np.sqrt(3)


def square_antiprism():
    """8 unit vectors: two squares turned 45 degrees apart, heights set so they form a tight frame."""
    r, h = np.sqrt(2 / 3), np.sqrt(1 / 3)
    a = np.pi / 2 * np.arange(4)
    top = np.stack([r * np.cos(a), r * np.sin(a), np.full(4, h)])
    bottom = np.stack([r * np.cos(a + np.pi / 4), r * np.sin(a + np.pi / 4), np.full(4, -h)])
    return np.hstack([top, bottom])


def block(*parts, extra=0):
    """Place each m_p x k_p part in its own orthogonal subspace; `extra` unlearned features."""
    m, n = sum(p.shape[0] for p in parts), sum(p.shape[1] for p in parts) + extra
    W, r, c = np.zeros((m, n)), 0, 0
    for p in parts:
        W[r:r + p.shape[0], c:c + p.shape[1]] = p
        r, c = r + p.shape[0], c + p.shape[1]
    return W


@pytest.mark.parametrize("W, name, dim", [
    (np.array([[1.0]]), "dedicated", 1),
    (np.array([[1.0, -1.0]]), "digon", 1 / 2),
    (polygon(3), "triangle", 2 / 3),
    (tetrahedron(), "tetrahedron", 3 / 4),
    (polygon(5), "pentagon", 2 / 5),
    (square_antiprism(), "square antiprism", 3 / 8),
])
def test_each_regular_structure_is_named_with_its_dimensionality(W, name, dim):
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(W.shape[0], W.shape[0])))
    W = Q @ W  # any rotation of the subspace
    assert list(structures.label(W)) == [name] * W.shape[1]
    np.testing.assert_allclose(metrics.dimensionality(W), dim, atol=1e-9)


def test_a_tegum_product_is_split_into_its_orthogonal_parts():
    W = block(polygon(5), tetrahedron(), np.array([[1.0, -1.0]]), np.array([[1.0]]), extra=2)
    W *= 0.97  # trained norms are a little under 1
    labels = list(structures.label(W))
    assert labels == ["pentagon"] * 5 + ["tetrahedron"] * 4 + ["digon"] * 2 + ["dedicated"] + \
        ["not learned"] * 2
    # a small rotation mixing the subspaces keeps the labels while |cos| stays under LINK
    rng = np.random.default_rng(1)
    noise = 0.01 * rng.normal(size=W.shape) * (np.linalg.norm(W, axis=0) > 0)
    assert list(structures.label(W + noise)) == labels


def test_irregular_arrangements_are_other():
    square = polygon(4)  # 4 in 2-D: two orthogonal digons, not one structure
    assert list(structures.label(square)) == ["digon"] * 4
    lopsided = np.array([[1.0, 0.8], [0.0, 0.6]])  # two features at 37 degrees in 2-D
    assert list(structures.label(lopsided)) == ["other", "other"]
    squashed = polygon(5) * np.array([[1.0], [0.5]])  # a pentagon flattened: D_i far from 2/5
    squashed /= np.linalg.norm(squashed, axis=0)
    assert set(structures.label(squashed)) == {"other"}


@pytest.mark.parametrize("n, m", [(2, 1), (3, 2), (5, 2), (8, 3), (12, 4)])
def test_batched_labels_equal_one_model_at_a_time(n, m):
    rng = np.random.default_rng(n)
    # random norms around the learned threshold, plus exact regular polytopes
    Ws = rng.normal(size=(400, m, n)) * rng.choice([0.2, 0.8, 1.2], size=(400, 1, n))
    if m == 2:
        angles = 2 * np.pi * np.arange(n) / n
        Ws[:50] = np.stack([np.cos(angles), np.sin(angles)])
    if m == 1:
        Ws[:50] = np.array([[1.0, -1.0]])
    if m == 4:  # a digon, a dedicated feature and a triangle in orthogonal subspaces
        Ws[:50] = 0
        Ws[:50, 0, :2] = [1, -1]
        Ws[:50, 1, 2] = 1
        third = 2 * np.pi * np.arange(3) / 3
        Ws[:50, 2:, 3:6] = np.stack([np.cos(third), np.sin(third)])
    batched = structures.labels(Ws)
    np.testing.assert_array_equal(batched, [structures.label(W) for W in Ws])
    assert len(set(batched.ravel())) >= 3  # the stack exercises several names
