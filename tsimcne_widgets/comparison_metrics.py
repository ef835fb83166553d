"""The metrics table of a method comparison."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from . import metrics as M

__all__ = ["metrics_table", "metrics_html"]

COLUMNS = {
    "knn_accuracy": "kNN accuracy (k=15)",
    "knn_recall": "kNN recall (k=15)",
    "spearman": "Spearman distance corr.",
    "silhouette": "silhouette",
}


def metrics_table(embeddings: dict, labels=None, features=None, *, k=15,
                  random_state=0) -> pd.DataFrame:
    """One row per method: kNN accuracy and silhouette (need labels), kNN recall against
    ``features`` and Spearman distance correlation (need features). Missing inputs give NaN.
    """
    rows = {}
    for name, Z in embeddings.items():
        Z = np.asarray(Z, dtype=np.float64)
        row = dict.fromkeys(COLUMNS, np.nan)
        if labels is not None:
            row["knn_accuracy"] = M.knn_accuracy(Z, labels, k=k, random_state=random_state)
            row["silhouette"] = M.silhouette(Z, labels)
        if features is not None:
            row["knn_recall"] = M.knn_recall(features, Z, k=k)
            row["spearman"] = M.spearman_distance_correlation(features, Z,
                                                              random_state=random_state)
        rows[name] = row
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    df.index.name = "method"
    return df


def metrics_html(df: pd.DataFrame) -> str:
    """An HTML table with the best value of each column in bold; all text escaped."""
    head = "".join(f"<th>{html.escape(COLUMNS.get(c, c))}</th>" for c in df.columns)
    best = {c: df[c].max() for c in df.columns if df[c].notna().any()}
    body = []
    for name, row in df.iterrows():
        cells = []
        for c in df.columns:
            v = row[c]
            text = "–" if pd.isna(v) else f"{v:.3f}"
            if c in best and not pd.isna(v) and np.isclose(v, best[c]):
                text = f"<b>{text}</b>"
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr><th>{html.escape(str(name))}</th>{''.join(cells)}</tr>")
    style = ("<style>.tsw-metrics{border-collapse:collapse;margin-top:6px}"
             ".tsw-metrics th,.tsw-metrics td{padding:2px 14px 2px 0;text-align:right}"
             ".tsw-metrics thead th{border-bottom:1px solid #aaa}"
             ".tsw-metrics tbody th{text-align:left}</style>")
    return (f"{style}<table class='tsw-metrics'><thead><tr><th>method</th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")
