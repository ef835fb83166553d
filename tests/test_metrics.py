from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import silhouette_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from tsimcne_widgets.metrics import (
    _neighbor_indices,
    knn_accuracy,
    knn_recall,
    silhouette,
    spearman_distance_correlation,
)

# ---------------------------------------------------------------------------------------------
# Independent reference implementations (brute force NumPy, no sklearn neighbour search)
# ---------------------------------------------------------------------------------------------


def _dist_matrix(A):
    A = np.asarray(A, dtype=np.float64)
    return np.sqrt(((A[:, None, :] - A[None, :, :]) ** 2).sum(-1))


def _brute_knn(A, k):
    D = _dist_matrix(A)
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :k]


def _brute_recall(X, Z, k):
    nx, nz = _brute_knn(X, k), _brute_knn(Z, k)
    return np.mean([len(set(a) & set(b)) / k for a, b in zip(nx, nz, strict=True)])


def _brute_spearman(X, Z):
    iu = np.triu_indices(len(X), k=1)
    dx, dz = _dist_matrix(X)[iu], _dist_matrix(Z)[iu]
    return np.corrcoef(rankdata(dx), rankdata(dz))[0, 1]


def _brute_silhouette(Z, y):
    D = _dist_matrix(Z)
    y = np.asarray(y)
    same = y[:, None] == y[None, :]
    n_same = same.sum(1) - 1
    a = np.where(same, D, 0).sum(1) / np.maximum(n_same, 1)
    b = np.full(len(y), np.inf)
    for c in np.unique(y):
        other = y != c
        b[other] = np.minimum(b[other], D[other][:, y == c].mean(1))
    s = (b - a) / np.maximum(a, b)
    return np.mean(np.where(n_same > 0, s, 0.0))


@pytest.fixture
def data():
    rng = np.random.default_rng(42)
    X = rng.normal(size=(150, 10))
    # A noisy linear projection: correlated with X but not identical.
    Z = X[:, :2] + 0.3 * rng.normal(size=(150, 2))
    y = rng.integers(0, 3, size=150)
    return X, Z, y


def _clusters(n_per=40, n_classes=4, spread=0.05, seed=0):
    rng = np.random.default_rng(seed)
    centers = 10.0 * np.arange(n_classes)[:, None] * np.array([[1.0, 0.5]])
    y = np.repeat(np.arange(n_classes), n_per)
    Z = centers[y] + spread * rng.normal(size=(len(y), 2))
    return Z, y


# ---------------------------------------------------------------------------------------------
# knn_recall
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 5, 15])
def test_knn_recall_matches_brute_force(data, k):
    X, Z, _ = data
    assert knn_recall(X, Z, k=k) == pytest.approx(_brute_recall(X, Z, k), abs=1e-12)


def test_knn_recall_perfect_embedding():
    X = np.random.default_rng(1).normal(size=(100, 2))
    assert knn_recall(X, X.copy(), k=10) == 1.0
    # Rotation, scaling and translation keep every neighbour set.
    rot = np.array([[0.6, -0.8], [0.8, 0.6]])
    assert knn_recall(X, 3.0 * X @ rot + 5.0, k=10) == 1.0


def test_knn_recall_random_embedding_near_chance():
    rng = np.random.default_rng(2)
    n, k = 1000, 15
    X, Z = rng.normal(size=(n, 5)), rng.normal(size=(n, 2))
    assert knn_recall(X, Z, k=k) == pytest.approx(k / (n - 1), abs=0.01)


def test_neighbor_indices_exclude_self_with_duplicates():
    rng = np.random.default_rng(3)
    # Many exact copies: the point itself may be missing from its own k+1 list.
    A = np.repeat(rng.normal(size=(4, 3)), 8, axis=0)
    idx = _neighbor_indices(A, 5)
    assert idx.shape == (32, 5)
    assert not (idx == np.arange(32)[:, None]).any()
    assert all(len(set(row)) == 5 for row in idx)
    # Every neighbour is an exact copy (distance 0) of the query point.
    assert np.array_equal(A[idx], np.broadcast_to(A[:, None, :], (32, 5, 3)))


def test_knn_recall_triplicates_are_each_others_neighbours():
    rng = np.random.default_rng(4)
    X = np.repeat(rng.normal(size=(20, 6)), 3, axis=0)
    Z = np.repeat(rng.normal(size=(20, 2)), 3, axis=0)
    # Each point's 2 nearest neighbours are its 2 copies in both spaces.
    assert knn_recall(X, Z, k=2) == 1.0


# ---------------------------------------------------------------------------------------------
# knn_accuracy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("test_size", [0.1, 0.25, 30])
@pytest.mark.parametrize("k", [1, 5, 15])
def test_knn_accuracy_matches_direct(data, test_size, k):
    _, Z, y = data
    Ztr, Zte, ytr, yte = train_test_split(Z, y, test_size=test_size, random_state=7, stratify=y)
    expected = KNeighborsClassifier(n_neighbors=k).fit(Ztr, ytr).score(Zte, yte)
    got = knn_accuracy(Z, y, k=k, test_size=test_size, random_state=7)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, abs=1e-12)


def test_knn_accuracy_string_labels(data):
    _, Z, y = data
    names = np.array(["cat", "dog", "frog"])[y]
    assert knn_accuracy(Z, names, k=5) == knn_accuracy(Z, y, k=5)
    assert knn_accuracy(Z, list(names), k=5) == knn_accuracy(Z, y, k=5)


def test_knn_accuracy_separated_clusters():
    Z, y = _clusters()
    assert knn_accuracy(Z, y, k=15) == 1.0


def test_knn_accuracy_unstratifiable_falls_back_with_warning(data):
    _, Z, y = data
    y = y.copy()
    y[0] = 99  # a class with a single member cannot be stratified
    with pytest.warns(UserWarning, match=r"cannot stratify.*\[99\].*non-stratified"):
        got = knn_accuracy(Z, y, k=5, random_state=3)
    Ztr, Zte, ytr, yte = train_test_split(Z, y, test_size=0.1, random_state=3)
    assert got == KNeighborsClassifier(n_neighbors=5).fit(Ztr, ytr).score(Zte, yte)


def test_knn_accuracy_test_part_smaller_than_classes_warns(data):
    _, Z, y = data
    with pytest.warns(UserWarning, match="test part"):
        knn_accuracy(Z, y, k=5, test_size=2)


def test_knn_accuracy_k_larger_than_train_set_raises():
    Z, y = _clusters(n_per=10, n_classes=2)  # 20 points, test_size=0.1 -> 18 train points
    assert knn_accuracy(Z, y, k=18) == 0.5  # every vote is 9:9, the tie goes to class 0
    with pytest.raises(ValueError, match=r"k must be .*n_train=18\), got 19"):
        knn_accuracy(Z, y, k=19)


# ---------------------------------------------------------------------------------------------
# spearman_distance_correlation
# ---------------------------------------------------------------------------------------------


def test_spearman_full_data_matches_brute_force(data):
    X, Z, _ = data
    got = spearman_distance_correlation(X, Z, n=5000)
    assert got == pytest.approx(_brute_spearman(X, Z), abs=1e-10)
    # With n_samples <= n no sampling happens, so random_state is irrelevant.
    assert spearman_distance_correlation(X, Z, n=150, random_state=123) == got


def test_spearman_sampling_path(data):
    X, Z, _ = data
    n = 60
    idx = np.random.default_rng(5).choice(len(X), size=n, replace=False)
    got = spearman_distance_correlation(X, Z, n=n, random_state=5)
    assert got == pytest.approx(_brute_spearman(X[idx], Z[idx]), abs=1e-10)


def test_spearman_subsample_close_to_full():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(1500, 8))
    Z = X[:, :2] + 0.5 * rng.normal(size=(1500, 2))
    full = _brute_spearman(X, Z)
    sub = spearman_distance_correlation(X, Z, n=300, random_state=0)
    assert 0.3 < full < 0.9
    assert sub == pytest.approx(full, abs=0.05)


def test_spearman_perfect_embedding():
    X = np.random.default_rng(7).normal(size=(80, 2))
    assert spearman_distance_correlation(X, X.copy()) == pytest.approx(1.0)
    # Any monotone rescaling of all distances keeps the ranks.
    assert spearman_distance_correlation(X, 2.5 * X - 1) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# silhouette
# ---------------------------------------------------------------------------------------------


def test_silhouette_matches_sklearn_and_brute_force(data):
    _, Z, y = data
    got = silhouette(Z, y)
    assert got == pytest.approx(silhouette_score(Z, y, metric="euclidean"), abs=1e-12)
    assert got == pytest.approx(_brute_silhouette(Z, y), abs=1e-10)


def test_silhouette_sample_size_passthrough(data):
    _, Z, y = data
    expected = silhouette_score(Z, y, sample_size=50, random_state=3)
    assert silhouette(Z, y, sample_size=50, random_state=3) == pytest.approx(expected)


def test_silhouette_separated_clusters_string_labels():
    Z, y = _clusters()
    assert silhouette(Z, np.array(list("abcd"))[y]) > 0.95


# ---------------------------------------------------------------------------------------------
# Input conversion
# ---------------------------------------------------------------------------------------------


class _FakeTensor:
    """Minimal stand-in for a torch tensor that requires grad on a GPU."""

    def __init__(self, a):
        self._a = np.asarray(a)

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self._a

    def __array__(self, *args, **kwargs):
        raise RuntimeError("call .detach() first")


def test_tensor_like_inputs_are_detached(data):
    X, Z, y = data
    assert knn_recall(_FakeTensor(X), _FakeTensor(Z), k=5) == knn_recall(X, Z, k=5)
    assert knn_accuracy(_FakeTensor(Z), _FakeTensor(y)) == knn_accuracy(Z, y)


def test_torch_tensors(data):
    torch = pytest.importorskip("torch")
    X, Z, y = data
    Zt = torch.tensor(Z, dtype=torch.float32, requires_grad=True)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    assert knn_recall(Xt, Zt, k=5) == knn_recall(X, Zt.detach().numpy(), k=5)
    assert silhouette(Zt, yt) == pytest.approx(silhouette(Z, y), abs=1e-5)
    assert isinstance(spearman_distance_correlation(Xt, Zt), float)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

_Z = np.random.default_rng(8).normal(size=(10, 2))
_X = np.random.default_rng(9).normal(size=(10, 5))
_y = np.array([0, 1] * 5)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: knn_accuracy(np.zeros(10), _y),
            ValueError,
            r"Z must be a 2D array of shape \(n_samples, n_components\), got shape \(10,\)\.",
        ),
        (
            lambda: silhouette(np.zeros((10, 2, 1)), _y),
            ValueError,
            r"Z must be a 2D array .*got shape \(10, 2, 1\)",
        ),
        (
            lambda: knn_recall(np.zeros(10), _Z),
            ValueError,
            r"X must be a 2D array of shape \(n_samples, n_features\), got shape \(10,\)",
        ),
        (
            lambda: knn_recall(_X, _Z[:9]),
            ValueError,
            r"Z must have the same number of samples as X \(n_samples=10\), got shape \(9, 2\)",
        ),
        (
            lambda: spearman_distance_correlation(_X[:8], _Z),
            ValueError,
            r"Z must have the same number of samples as X \(n_samples=8\)",
        ),
        (
            lambda: knn_accuracy(np.where(np.eye(10, 2) > 0, np.nan, _Z), _y),
            ValueError,
            r"Z must contain only finite values, got 2 NaN or infinite entries",
        ),
        (
            lambda: knn_recall(np.full((10, 5), np.inf), _Z),
            ValueError,
            r"X must contain only finite values",
        ),
        (
            lambda: knn_accuracy(np.array([["a", "b"]] * 10), _y),
            TypeError,
            r"Z must be a numeric array \(integer or floating point\), got dtype <U1",
        ),
        (
            lambda: knn_recall(_X, np.ones((10, 2), dtype=complex)),
            TypeError,
            r"Z must be a numeric array",
        ),
        (
            lambda: knn_recall(_X, [[1.0, 2.0], [3.0]] * 5),
            ValueError,
            r"Z could not be converted to a NumPy array",
        ),
        (
            lambda: knn_accuracy(_Z, _y[:, None]),
            ValueError,
            r"y must be a 1D array of shape \(n_samples,\), got shape \(10, 1\)",
        ),
        (
            lambda: silhouette(_Z, _y[:9]),
            ValueError,
            r"y must have one label per sample of Z \(n_samples=10\), got 9 labels",
        ),
        (lambda: knn_recall(_X, _Z, k=0), ValueError, r"k must be .*1 <= k < n_samples=10.*0"),
        (lambda: knn_recall(_X, _Z, k=10), ValueError, r"k must be .*n_samples=10, got 10"),
        (lambda: knn_recall(_X, _Z, k=2.5), TypeError, r"k must be an integer .*got 2\.5"),
        (lambda: knn_recall(_X, _Z, k=True), TypeError, r"k must be an integer .*got True"),
        (lambda: knn_accuracy(_Z, _y, k=0), ValueError, r"k must be .*got 0"),
        (lambda: knn_accuracy(_Z, _y, k="5"), TypeError, r"k must be an integer .*got '5'"),
        (
            lambda: knn_accuracy(_Z, _y, k=1, test_size=1.5),
            ValueError,
            r"test_size must be a float in \(0, 1\) or an integer in \[1, 9\], got 1\.5",
        ),
        (
            lambda: knn_accuracy(_Z, _y, k=1, test_size=10),
            ValueError,
            r"test_size must be .*non-empty.*got 10",
        ),
        (
            lambda: knn_accuracy(_Z, _y, k=1, test_size=0.99),
            ValueError,
            r"test_size must be .*n_test=10",
        ),
        (lambda: knn_accuracy(_Z, _y, test_size="0.1"), TypeError, r"test_size must be"),
        (lambda: spearman_distance_correlation(_X, _Z, n=2), ValueError, r"n must be .*>= 3"),
        (lambda: spearman_distance_correlation(_X, _Z, n=None), TypeError, r"n must be"),
        (
            lambda: spearman_distance_correlation(_X[:2], _Z[:2]),
            ValueError,
            r"X must have at least 3 samples, got shape \(2, 5\)",
        ),
        (
            lambda: silhouette(_Z, np.zeros(10)),
            ValueError,
            r"y must have between 2 and n_samples - 1 = 9 distinct labels .*got 1",
        ),
        (lambda: silhouette(_Z, np.arange(10)), ValueError, r"distinct labels .*got 10"),
        (lambda: silhouette(_Z, _y, sample_size=1), ValueError, r"sample_size must be .*got 1"),
        (lambda: silhouette(_Z, _y, sample_size=0.5), TypeError, r"sample_size must be"),
    ],
)
def test_validation_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
