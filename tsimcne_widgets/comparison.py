"""MethodComparison: t-SimCNE next to t-SNE and UMAP, with linked selection and metrics."""

from __future__ import annotations

import threading

import ipywidgets as W
import numpy as np
import pandas as pd

from .comparison_metrics import metrics_html, metrics_table
from .data import as_images
from .labels import encode_labels
from .scatter import EmbeddingScatter

__all__ = ["MethodComparison"]

_NAMES = {"tsne": "t-SNE", "umap": "UMAP", "pca": "PCA"}
# Spelling suffix -> (input, title suffix). The inputs: the estimator's backbone features,
# the raw pixels, both joined by ``baselines.joined_features``, or the images' HOG.
_SOURCES = {"": ("features", ""), ":pixels": ("pixels", " (pixels)"),
            ":features+pixels": ("joined", " (features + pixels)"), ":hog": ("hog", " (HOG)")}


def _method_spellings() -> tuple[str, ...]:
    from .baselines import METHODS

    return tuple(m + suffix for suffix in _SOURCES for m in METHODS)


def _parse_method(spec, what="methods") -> tuple[str, str, str]:
    """``'tsne'`` -> ``('tsne', 'features', 't-SNE')``;
    ``'tsne:pixels'`` -> ``('tsne', 'pixels', 't-SNE (pixels)')``."""
    accepted = _method_spellings()
    if not isinstance(spec, str) or spec not in accepted:
        raise ValueError(f"{what} must contain only {', '.join(map(repr, accepted))}, "
                         f"got {spec!r}.")
    method = spec.partition(":")[0]
    source, title = _SOURCES[spec[len(method):]]
    return method, source, _NAMES[method] + title


class MethodComparison(W.VBox):
    """A grid of linked :class:`EmbeddingScatter` panels, one per method, and a metrics table.

    A lasso in any panel selects the same points in every panel; hovering a point
    highlights it everywhere. Views (pan, zoom) are not linked: the coordinate systems
    differ.

    Parameters
    ----------
    embeddings : dict of str to array of shape (n_samples, 2)
        One panel per entry, in order.
    labels : array-like, optional
        Encoded once by the rule of :mod:`tsimcne_widgets.labels`; every panel and
        :meth:`save_html` show the same classes in the same colours.
    images : optional
        Anything :func:`tsimcne_widgets.as_images` accepts; hover thumbnails and the HTML
        export's tooltips.
    metadata : pandas.DataFrame, optional
        Tooltips, and extra columns in ``selected_dataframe()``.
    features : array of shape (n_samples, n_features), optional
        The backbone features; needed for kNN recall and the Spearman correlation.
    class_names : sequence of str, optional
    columns : int, default=3
        Panels per row.
    height : int, default=340
        Height of each panel in pixels, as ``EmbeddingScatter``'s ``height``.
    """

    def __init__(self, embeddings: dict, labels=None, images=None, metadata=None,
                 features=None, *, class_names=None, columns=3, height=340):
        if not isinstance(embeddings, dict) or not embeddings:
            raise ValueError("embeddings must be a non-empty dict of name -> (N, 2) array.")
        n = {len(np.asarray(z)) for z in embeddings.values() if z is not None}
        if len(n) != 1:
            raise ValueError(f"all embeddings must have the same number of rows, got {n}.")
        self.n_samples = n.pop()
        self.images = None if images is None else as_images(images)
        if labels is None and self.images is not None and self.images.labels is not None:
            labels, class_names = self.images.labels, class_names or self.images.class_names
        # One encoding for every panel and the HTML export: the same classes and colours.
        # It sees the labels as given (a categorical keeps its category order).
        self._encoded = encode_labels(labels, self.n_samples,
                                      None if labels is None else class_names)
        self.labels = None if labels is None else np.asarray(labels)
        self.class_names = class_names
        self.metadata = metadata
        self.features = None if features is None else np.asarray(features, dtype=np.float32)
        self.embeddings = {k: None if v is None else np.asarray(v, dtype=np.float32)
                           for k, v in embeddings.items()}
        self.runs: dict = {}
        self._linking = False
        self._lock = threading.Lock()
        self._metrics: pd.DataFrame | None = None
        self.panels: dict[str, EmbeddingScatter] = {}
        for name, Z in self.embeddings.items():
            xy = Z if Z is not None else np.zeros((self.n_samples, 2), np.float32)
            panel = EmbeddingScatter(
                xy, labels=self._encoded, images=self.images, metadata=metadata,
                title=name if Z is not None else f"{name} (computing…)",
                height=height,
                # until its first frame, a baseline's panel would show all points at (0, 0)
                placeholder="" if Z is not None else "computing…")
            panel.on_select(lambda sel, src=name: self._link_selection(src, sel))
            if hasattr(panel, "on_hover"):
                panel.on_hover(lambda i, src=name: self._link_hover(src, i))
            self.panels[name] = panel
        self.table = W.HTML("<i>computing metrics…</i>")
        grid = W.GridBox(list(self.panels.values()), layout=W.Layout(
            # minmax(0, ...): the panels share the width instead of growing to their content
            grid_template_columns=f"repeat({min(columns, len(self.panels))}, minmax(0, 1fr))",
            width="100%"))
        super().__init__(children=[grid, self.table])
        self.add_class("tsw-comparison")
        self._refresh_metrics()

    # -- construction from an estimator -------------------------------------------------
    @classmethod
    def from_estimator(cls, estimator, images, labels=None, *, methods=("tsne", "umap"),
                       metadata=None, random_state=0, method_params=None, **kwargs):
        """Compare a fitted ``TSimCNE`` with baselines on its backbone features or pixels.

        The baselines run in background threads; their panels fill in (and t-SNE
        animates) as they compute. ``comparison.wait()`` blocks until all are done.

        Parameters
        ----------
        estimator : TSimCNE
            A fitted estimator; its ``transform(images)`` is the "t-SimCNE" panel.
        images : ImageData, array-like, sequence of images or torch Dataset
            Anything :func:`tsimcne_widgets.as_images` accepts.
        labels : array-like of shape (n_samples,), optional
            Colours the points; defaults to the labels that come with `images`.
        methods : str or sequence of str, default=("tsne", "umap")
            One panel per entry, after the t-SimCNE panel. ``"tsne"``, ``"umap"`` and
            ``"pca"`` embed the estimator's backbone features
            (``estimator.backbone_features(images)``) and are titled "t-SNE", "UMAP" and "PCA".
            ``"tsne:pixels"``, ``"umap:pixels"`` and ``"pca:pixels"`` embed the raw pixels
            (:func:`tsimcne_widgets.baselines.pixel_features`) and are titled
            "t-SNE (pixels)", "UMAP (pixels)" and "PCA (pixels)": they show what t-SimCNE
            adds over the pixels. ``"tsne:features+pixels"`` (and likewise for UMAP and PCA)
            embeds both side by side, each with an equal say
            (:func:`tsimcne_widgets.baselines.joined_features`), titled
            "t-SNE (features + pixels)": it beats the pixels alone only where the features
            know something the pixels do not. ``"tsne:hog"`` (and likewise) embeds
            histograms of oriented gradients of the images
            (:func:`tsimcne_widgets.hog.hog_features`, at least 14x14 pixels), titled
            "t-SNE (HOG)": the baseline for a run with ``neighbor_space='hog'``. Backbone
            features are computed only if a method needs them, pixels likewise. The
            titles are also the keys of ``embeddings``, ``panels`` and ``runs``, the
            index of ``metrics()`` and the column suffixes of ``selected_dataframe()``
            (``x_t-SNE (pixels)``).
        metadata : pandas.DataFrame, optional
            Tooltips, and extra columns in ``selected_dataframe()``.
        random_state : int, default=0
            Seed of every baseline.
        method_params : dict of str to dict, optional
            Keyword arguments for :func:`tsimcne_widgets.baselines.embed`, keyed by the
            entries of `methods`. A key ``"tsne"`` also applies to ``"tsne:pixels"`` and
            ``"tsne:features+pixels"`` unless they have their own entry. Every baseline
            uses ``pca='auto'`` (PCA to 50 dimensions before t-SNE and UMAP) unless told
            otherwise here.
        **kwargs
            Passed to :class:`MethodComparison` (``columns``, ``height``).

        Returns
        -------
        MethodComparison

        Raises
        ------
        ValueError
            If `methods` or the keys of `method_params` hold anything but the spellings
            above, or `methods` names one twice.

        Notes
        -----
        kNN recall and the Spearman distance correlation in ``metrics()`` are measured
        against the backbone features for every panel, the pixel ones included; they are
        NaN when only pixel methods are requested (no backbone features are computed).
        """
        from . import baselines
        from .hog import hog_features

        methods = (methods,) if isinstance(methods, str) else tuple(methods)
        specs = [_parse_method(m) for m in methods]
        names = [name for _, _, name in specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"methods names {', '.join(map(repr, dupes))} more than once.")
        params = dict(method_params or {})
        for key in params:
            _parse_method(key, what="method_params keys")
        data = as_images(images, labels=labels)
        inputs = {source for _, source, _ in specs}
        # First, so that images too small for HOG fail before any model work.
        hog = hog_features(data.images).numpy() if "hog" in inputs else None
        Z = estimator.transform(data)
        H = estimator.backbone_features(data) if inputs & {"features", "joined"} else None
        P = baselines.pixel_features(data) if inputs & {"pixels", "joined"} else None
        sources = {"features": H, "pixels": P,
                   "joined": baselines.joined_features(H, P) if "joined" in inputs else None,
                   "hog": hog}
        embeddings = {"t-SimCNE": Z, **dict.fromkeys(names)}
        comp = cls(embeddings, labels=data.labels, images=data, metadata=metadata,
                   features=H, class_names=data.class_names, **kwargs)
        for spec, (method, source, name) in zip(methods, specs, strict=True):
            kw = params.get(spec, params.get(method, {}))
            run = baselines.start(sources[source], method, random_state=random_state, **kw)
            comp._follow(name, run)
        return comp

    def _follow(self, name: str, run) -> None:
        self.runs[name] = run
        panel = self.panels[name]
        # The badge names the frame's phase (t-SNE counts its iterations afresh in
        # each one), not the run's current one, which may have moved on by now.
        run.on("snapshot",
               lambda s: panel.update(s.xy, badge=f"{name}: {run.describe(s)}"))

        def done(_):
            self.embeddings[name] = run.embedding
            panel.update(run.embedding, badge="")
            panel.title = name
            self._refresh_metrics()

        run.on("finished", done)
        run.on("stopped", done)
        def failed(exc):
            panel.title = f"{name} (failed: {exc})"
            panel.placeholder = "failed" if panel.placeholder else ""

        run.on("failed", failed)
        if run.done and run.embedding is not None:
            done(run)

    def wait(self, timeout=None) -> MethodComparison:
        """Wait for the background baselines and the metrics."""
        for run in self.runs.values():
            run.wait(timeout)
        t = getattr(self, "_metrics_thread", None)
        if t is not None:
            t.join(timeout)
        return self

    # -- linking ------------------------------------------------------------------------
    @property
    def selection(self) -> np.ndarray:
        """Indices selected in every panel (uint32)."""
        return next(iter(self.panels.values())).selection

    @selection.setter
    def selection(self, indices) -> None:
        self._link_selection(None, np.asarray(indices))

    def _link_selection(self, source, sel) -> None:
        with self._lock:
            if self._linking:
                return
            self._linking = True
        try:
            for name, panel in self.panels.items():
                if name != source:
                    panel.selection = sel
        finally:
            with self._lock:
                self._linking = False

    def _link_hover(self, source, index) -> None:
        for name, panel in self.panels.items():
            if name != source:
                panel.highlight_points([] if index is None or index < 0 else [index])

    # -- metrics and export -------------------------------------------------------------
    def _ready(self) -> dict:
        return {k: v for k, v in self.embeddings.items() if v is not None}

    def _class_codes(self):
        """Class codes for the label metrics; None for continuous labels (no classes)."""
        return self._encoded.values if self._encoded.kind == "categorical" else None

    def _refresh_metrics(self) -> None:
        def work():
            df = metrics_table(self._ready(), self._class_codes(), self.features)
            with self._lock:
                self._metrics = df
            self.table.value = metrics_html(df)

        thread = threading.Thread(target=work, daemon=True, name="tsimcne-metrics")
        thread.start()
        self._metrics_thread = thread

    def metrics(self) -> pd.DataFrame:
        """kNN accuracy, kNN recall, Spearman distance correlation and silhouette per
        method (NaN where labels or features are missing). Recall and Spearman compare
        every panel, pixel baselines included, with ``features`` (the backbone features
        in :meth:`from_estimator`)."""
        return metrics_table(self._ready(), self._class_codes(), self.features)

    def selected_dataframe(self) -> pd.DataFrame:
        """One row per selected point: index, label, x_<method>, y_<method> for every
        method, and every metadata column."""
        idx = np.asarray(self.selection, dtype=np.int64)
        df = pd.DataFrame({"index": idx})
        if self.labels is not None:
            codes = self.labels[idx]
            df["label"] = ([self.class_names[c] for c in codes] if self.class_names is not None
                           else codes)
        for name, Z in self._ready().items():
            df[f"x_{name}"] = Z[idx, 0]
            df[f"y_{name}"] = Z[idx, 1]
        if self.metadata is not None:
            meta = self.metadata.iloc[idx].reset_index(drop=True)
            for col in meta.columns:
                df[col] = meta[col].to_numpy()
        return df

    def save_html(self, path, *, title="t-SimCNE vs t-SNE vs UMAP", thumbnails="auto",
                  axes=False):
        """Write a self-contained HTML file: all panels with linked brushing in the
        browser (no kernel), hover tooltips with thumbnails, a legend whose entries hide
        their class when clicked, and the metrics table. The current selection is
        selected in the file too (the other points dimmed); ``axes=True`` draws axes."""
        from .export_html import save_html

        return save_html(path, self._ready(), labels=self._encoded, images=self.images,
                         metadata=self.metadata, metrics=self.metrics(), title=title,
                         thumbnails=thumbnails, axes=axes, selection=self.selection)
