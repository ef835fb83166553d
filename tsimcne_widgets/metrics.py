"""Quality metrics for 2D embeddings, as used in the t-SimCNE paper.

Böhm, Berens & Kobak, "Unsupervised visualization of image datasets using contrastive
learning", ICLR 2023. The paper reports kNN classification accuracy in the embedding
(class separation), kNN recall of the high-dimensional neighbours (local structure) and the
Spearman correlation of pairwise distances (global structure); the silhouette score is added
as a common cluster-separation measure.

All functions are pure: they take array-likes (NumPy arrays, lists, pandas objects or torch
tensors, which are detached and moved to the CPU) and return a Python ``float``. All
distances are Euclidean and are computed in float64.
"""

from __future__ import annotations

import numbers
import warnings
from math import ceil

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr
from sklearn.metrics import silhouette_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

__all__ = [
    "knn_accuracy",
    "knn_recall",
    "silhouette",
    "spearman_distance_correlation",
]


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------


def _to_numpy(a, name: str) -> np.ndarray:
    # torch tensors may need grad detachment / a device copy before NumPy can see them;
    # duck-typed so that torch stays an optional dependency of this module.
    if hasattr(a, "detach") and callable(a.detach):
        a = a.detach()
        if hasattr(a, "cpu"):
            a = a.cpu()
        if hasattr(a, "numpy"):
            a = a.numpy()
    try:
        return np.asarray(a)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"{name} could not be converted to a NumPy array: {exc}") from exc


def _check_data(
    a,
    name: str,
    shape_hint: str,
    *,
    n_samples: int | None = None,
    other: str = "",
    min_samples: int = 2,
) -> np.ndarray:
    """Return `a` as a finite float64 array of shape (n_samples, n_dims) or raise."""
    arr = _to_numpy(a, name)
    if arr.dtype.kind not in "iuf":
        raise TypeError(
            f"{name} must be a numeric array (integer or floating point), got dtype {arr.dtype}."
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2D array of shape (n_samples, {shape_hint}), got shape {arr.shape}."
        )
    if n_samples is not None and arr.shape[0] != n_samples:
        raise ValueError(
            f"{name} must have the same number of samples as {other} "
            f"(n_samples={n_samples}), got shape {arr.shape}."
        )
    if arr.shape[0] < min_samples:
        raise ValueError(f"{name} must have at least {min_samples} samples, got shape {arr.shape}.")
    if arr.shape[1] < 1:
        raise ValueError(
            f"{name} must have at least one column ({shape_hint}), got shape {arr.shape}."
        )
    arr = arr.astype(np.float64, copy=False)
    n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    if n_bad:
        raise ValueError(
            f"{name} must contain only finite values, got {n_bad} NaN or infinite entries."
        )
    return arr


def _check_labels(y, n_samples: int) -> np.ndarray:
    labels = _to_numpy(y, "y")
    if labels.ndim != 1:
        raise ValueError(f"y must be a 1D array of shape (n_samples,), got shape {labels.shape}.")
    if labels.shape[0] != n_samples:
        raise ValueError(
            f"y must have one label per sample of Z (n_samples={n_samples}), "
            f"got {labels.shape[0]} labels."
        )
    return labels


def _check_int(value, name: str, accepted: str) -> int:
    # bool is an Integral subclass but True/False as a count is almost certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer ({accepted}), got {value!r}.")
    return int(value)


def _check_k(k, n_samples: int) -> int:
    accepted = f"1 <= k < n_samples={n_samples}"
    k = _check_int(k, "k", accepted)
    if not 1 <= k < n_samples:
        raise ValueError(f"k must be an integer with {accepted}, got {k}.")
    return k


def _n_test(test_size, n_samples: int) -> int:
    """Number of test points exactly as ``train_test_split`` computes it."""
    accepted = f"a float in (0, 1) or an integer in [1, {n_samples - 1}]"
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(f"test_size must be {accepted}, got {test_size!r}.")
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
    elif 0.0 < float(test_size) < 1.0:
        n_test = ceil(float(test_size) * n_samples)
    else:
        raise ValueError(f"test_size must be {accepted}, got {test_size!r}.")
    if not 1 <= n_test <= n_samples - 1:
        raise ValueError(
            f"test_size must be {accepted} so that both the train and the test part are "
            f"non-empty, got {test_size!r} (n_test={n_test}, n_samples={n_samples})."
        )
    return n_test


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------


def knn_accuracy(Z, y, k: int = 15, test_size: float | int = 0.1, random_state=0) -> float:
    """kNN classification accuracy of the labels in the embedding, on a held-out split.

    The points are split once into a train and a test part with
    ``sklearn.model_selection.train_test_split(Z, y, test_size=test_size,
    random_state=random_state, stratify=y)``, i.e. a random split that keeps the class
    proportions. A ``KNeighborsClassifier(n_neighbors=k)`` with Euclidean distance and
    uniform (majority) voting is fit on the train part, and the fraction of test points whose
    predicted label equals the true label is returned.

    Stratification needs every class to have at least 2 members and both parts to hold at
    least one point per class. When that is not the case, the function does **not** raise:
    it emits a ``UserWarning`` that says why and falls back to the same call with
    ``stratify=None`` (a plain random split, same ``random_state``).

    Ties: a vote tie between classes goes to the class that sorts first (``np.unique``
    order of the labels), as in scikit-learn. Points at exactly the same distance at the
    k-th neighbour position are chosen by scikit-learn's neighbour search, which depends on
    the order of the training data.

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        The embedding. NumPy arrays, nested lists and torch tensors are accepted; values must
        be finite.
    y : array-like of shape (n_samples,)
        Class labels, integers or strings.
    k : int, default=15
        Number of neighbours that vote. Must satisfy ``1 <= k <= n_train`` (the size of the
        train part); a larger ``k`` raises ``ValueError`` rather than being clamped, so the
        reported number always means what its ``k`` says.
    test_size : float or int, default=0.1
        A float in (0, 1) is the fraction of points in the test part (rounded up to a whole
        number, as ``train_test_split`` does); an int is the absolute number of test points.
    random_state : int, numpy.random.RandomState or None, default=0
        Seed of the split, passed to ``train_test_split``. ``None`` gives a different split
        on every call.

    Returns
    -------
    accuracy : float
        Fraction of correctly classified test points, in [0, 1].

    Raises
    ------
    TypeError
        If ``Z`` is not numeric, or ``k`` or ``test_size`` has the wrong type.
    ValueError
        If ``Z`` or ``y`` has the wrong shape, ``Z`` has non-finite values, ``test_size``
        leaves an empty part, or ``k`` exceeds the number of training points.

    Warns
    -----
    UserWarning
        If the split cannot be stratified and a non-stratified split is used instead.
    """
    Z = _check_data(Z, "Z", "n_components")
    n_samples = Z.shape[0]
    y = _check_labels(y, n_samples)
    n_test = _n_test(test_size, n_samples)
    n_train = n_samples - n_test
    k = _check_int(k, "k", f"1 <= k <= n_train={n_train}")
    if not 1 <= k <= n_train:
        raise ValueError(
            f"k must be an integer with 1 <= k <= n_train, the number of training points "
            f"after the split (n_samples={n_samples}, test_size={test_size!r} -> "
            f"n_train={n_train}), got {k}."
        )

    # Same preconditions as StratifiedShuffleSplit, checked up front so that a genuine
    # error from scikit-learn is never mistaken for a reason to fall back.
    classes, counts = np.unique(y, return_counts=True)
    reason = None
    if counts.min() < 2:
        reason = f"classes {classes[counts < 2].tolist()} have only 1 member"
    elif n_test < len(classes):
        reason = f"the test part ({n_test} points) is smaller than the {len(classes)} classes"
    elif n_train < len(classes):
        reason = f"the train part ({n_train} points) is smaller than the {len(classes)} classes"
    stratify = y
    if reason is not None:
        warnings.warn(
            f"knn_accuracy: cannot stratify the train/test split because {reason}; "
            "falling back to a non-stratified random split.",
            UserWarning,
            stacklevel=2,
        )
        stratify = None

    Z_train, Z_test, y_train, y_test = train_test_split(
        Z, y, test_size=test_size, random_state=random_state, stratify=stratify
    )
    clf = KNeighborsClassifier(n_neighbors=k, metric="euclidean")
    clf.fit(Z_train, y_train)
    return float(np.mean(clf.predict(Z_test) == y_test))


def _neighbor_indices(A: np.ndarray, k: int) -> np.ndarray:
    """Indices (n_samples, k) of each point's k Euclidean nearest neighbours, self excluded."""
    n = A.shape[0]
    nn = NearestNeighbors(n_neighbors=k + 1, metric="euclidean").fit(A)
    idx = nn.kneighbors(A, return_distance=False)
    drop = idx == np.arange(n)[:, None]
    # With exact duplicates the point itself can be missing from its own k+1 list (all
    # entries are then at distance 0); any entry may go, so drop the last one.
    missing = ~drop.any(axis=1)
    drop[missing, -1] = True
    return idx[~drop].reshape(n, k)


def knn_recall(X, Z, k: int = 15) -> float:
    """Fraction of each point's high-dimensional k nearest neighbours kept in the embedding.

    For every point i, ``N_X(i)`` is the set of its k nearest neighbours among all other
    points in ``X`` and ``N_Z(i)`` the same in ``Z``, both by Euclidean distance (exact search
    with ``sklearn.neighbors.NearestNeighbors(n_neighbors=k + 1)`` queried with the data
    itself). The point itself is removed by index, not by position, so exact duplicates are
    handled; if a point is missing from its own k+1 list (more than k exact duplicates),
    the last entry is dropped instead. The result is the mean over all points of
    ``|N_X(i) ∩ N_Z(i)| / k``. All points are used (no split, no sampling).

    Ties: when several points are at exactly the same distance at the k-th position, which
    of them enters the neighbour set is decided by scikit-learn's neighbour search.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        High-dimensional data (e.g. pixels or network features), finite values.
    Z : array-like of shape (n_samples, n_components)
        The embedding of the same points, in the same order, finite values.
    k : int, default=15
        Number of neighbours, ``1 <= k < n_samples``.

    Returns
    -------
    recall : float
        Mean kNN recall in [0, 1]. 1 means identical neighbour sets; a random embedding
        gives about ``k / (n_samples - 1)``.

    Raises
    ------
    TypeError
        If ``X`` or ``Z`` is not numeric or ``k`` is not an integer.
    ValueError
        If ``X`` or ``Z`` has the wrong shape or non-finite values, or ``k`` is out of range.
    """
    X = _check_data(X, "X", "n_features")
    n_samples = X.shape[0]
    Z = _check_data(Z, "Z", "n_components", n_samples=n_samples, other="X")
    k = _check_k(k, n_samples)

    nx = _neighbor_indices(X, k)
    nz = _neighbor_indices(Z, k)
    # Offset each row's indices by row * n_samples so that one set intersection over the
    # flattened arrays counts the per-row overlaps without a Python loop.
    offset = np.arange(n_samples, dtype=np.int64)[:, None] * n_samples
    n_common = np.intersect1d((nx + offset).ravel(), (nz + offset).ravel(), assume_unique=True).size
    return float(n_common / (n_samples * k))


def spearman_distance_correlation(X, Z, n: int = 5000, random_state=0) -> float:
    """Spearman correlation between pairwise distances in the data and in the embedding.

    If ``n_samples > n``, ``n`` points are drawn uniformly without replacement with
    ``np.random.default_rng(random_state).choice(n_samples, size=n, replace=False)``;
    otherwise all points are used and ``random_state`` is ignored. For the selected points,
    all ``m * (m - 1) / 2`` pairwise Euclidean distances are computed in ``X`` and in ``Z``
    (``scipy.spatial.distance.pdist``, condensed form, same pair order), and the Spearman
    rank correlation of the two distance vectors is returned (``scipy.stats.spearmanr``;
    tied distances get their average rank).

    Memory grows as ``n**2``: the default ``n=5000`` needs two vectors of 12.5 million
    float64 values (about 200 MB).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        High-dimensional data, finite values.
    Z : array-like of shape (n_samples, n_components)
        The embedding of the same points, in the same order, finite values.
    n : int, default=5000
        Maximum number of points to use, ``n >= 3``.
    random_state : int, numpy.random.Generator, numpy.random.SeedSequence or None, default=0
        Seed for the subsample, passed to ``np.random.default_rng``. Only used when
        ``n_samples > n``.

    Returns
    -------
    rho : float
        Spearman correlation in [-1, 1]. It is ``nan`` (and SciPy warns) if all distances in
        ``X`` or in ``Z`` are equal, where a rank correlation is undefined.

    Raises
    ------
    TypeError
        If ``X`` or ``Z`` is not numeric or ``n`` is not an integer.
    ValueError
        If ``X`` or ``Z`` has the wrong shape, fewer than 3 samples or non-finite values, or
        ``n < 3``.
    """
    X = _check_data(X, "X", "n_features", min_samples=3)
    n_samples = X.shape[0]
    Z = _check_data(Z, "Z", "n_components", n_samples=n_samples, other="X", min_samples=3)
    n = _check_int(n, "n", "n >= 3")
    if n < 3:
        # Fewer than 3 points give at most one distance, and a rank correlation of one
        # value is undefined.
        raise ValueError(f"n must be an integer >= 3, got {n}.")

    if n_samples > n:
        idx = np.random.default_rng(random_state).choice(n_samples, size=n, replace=False)
        X, Z = X[idx], Z[idx]
    rho = spearmanr(pdist(X, metric="euclidean"), pdist(Z, metric="euclidean")).statistic
    return float(rho)


def silhouette(Z, y, sample_size: int | None = None, random_state=0) -> float:
    """Mean silhouette coefficient of the labelled classes in the embedding.

    Computed with ``sklearn.metrics.silhouette_score(Z, y, metric="euclidean",
    sample_size=sample_size, random_state=random_state)``. For each point, ``a`` is the mean
    Euclidean distance to the other points of its class and ``b`` the smallest mean distance
    to the points of another class; its silhouette is ``(b - a) / max(a, b)`` (0 for a point
    that is alone in its class), and the mean over points is returned. With
    ``sample_size=None`` all points are used (memory and time grow as ``n_samples**2``).

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_components)
        The embedding, finite values.
    y : array-like of shape (n_samples,)
        Class labels, integers or strings; there must be between 2 and ``n_samples - 1``
        distinct labels.
    sample_size : int or None, default=None
        If an int, the score is computed on ``sample_size`` points drawn without replacement
        by scikit-learn (``random_state.permutation(n_samples)[:sample_size]``).
    random_state : int, numpy.random.RandomState or None, default=0
        Seed for that subsample; ignored when ``sample_size`` is None.

    Returns
    -------
    score : float
        Mean silhouette coefficient in [-1, 1]; close to 1 for compact, well-separated
        classes.

    Raises
    ------
    TypeError
        If ``Z`` is not numeric or ``sample_size`` is not an integer or None.
    ValueError
        If ``Z`` or ``y`` has the wrong shape, ``Z`` has non-finite values, the number of
        distinct labels is not in [2, n_samples - 1], or ``sample_size < 2``.
    """
    Z = _check_data(Z, "Z", "n_components", min_samples=3)
    n_samples = Z.shape[0]
    y = _check_labels(y, n_samples)
    n_labels = np.unique(y).size
    if not 2 <= n_labels <= n_samples - 1:
        raise ValueError(
            f"y must have between 2 and n_samples - 1 = {n_samples - 1} distinct labels "
            f"for the silhouette score, got {n_labels}."
        )
    if sample_size is not None:
        sample_size = _check_int(sample_size, "sample_size", "sample_size >= 2, or None")
        if sample_size < 2:
            raise ValueError(f"sample_size must be an integer >= 2 or None, got {sample_size}.")
    return float(
        silhouette_score(
            Z, y, metric="euclidean", sample_size=sample_size, random_state=random_state
        )
    )
