import re

import numpy as np
import pandas as pd
import pytest

from tsimcne_widgets import metrics as M
from tsimcne_widgets.comparison import MethodComparison


@pytest.fixture(scope="module")
def setup(small_digits):
    X, y = small_digits
    rng = np.random.default_rng(0)
    H = rng.normal(size=(120, 16)) + y[:, None]
    emb = {"t-SimCNE": rng.normal(size=(120, 2)) + y[:, None] * 3,
           "t-SNE": rng.normal(size=(120, 2)),
           "<b>evil</b>": rng.normal(size=(120, 2)) * 2}
    meta = pd.DataFrame({"file": [f"f{i}.png" for i in range(120)],
                         "note": ["<img src=x onerror=alert(1)>"] * 120})
    return X, y, H, emb, meta


def test_linked_selection_is_symmetric(setup):
    X, y, H, emb, meta = setup
    comp = MethodComparison(emb, labels=y, images=X, metadata=meta, features=H)
    names = list(comp.panels)
    for src in names:
        sel = np.array([1, 4, 9]) + names.index(src)
        comp.panels[src].selection = sel
        for other in names:
            np.testing.assert_array_equal(comp.panels[other].selection, sel)
    comp.selection = []
    assert all(len(p.selection) == 0 for p in comp.panels.values())


def test_selected_dataframe_columns_and_rows(setup):
    X, y, H, emb, meta = setup
    comp = MethodComparison(emb, labels=y, images=X, metadata=meta, features=H)
    comp.panels["t-SNE"].selection = [2, 7, 50]
    df = comp.selected_dataframe()
    assert list(df.columns) == ["index", "label", "x_t-SimCNE", "y_t-SimCNE", "x_t-SNE",
                                "y_t-SNE", "x_<b>evil</b>", "y_<b>evil</b>", "file", "note"]
    assert list(df["index"]) == [2, 7, 50]
    assert list(df["label"]) == [y[i] for i in (2, 7, 50)]
    assert df["x_t-SNE"].tolist() == pytest.approx(emb["t-SNE"][[2, 7, 50], 0])
    assert df["file"].tolist() == ["f2.png", "f7.png", "f50.png"]


def test_metrics_table_matches_the_metric_functions(setup):
    X, y, H, emb, meta = setup
    comp = MethodComparison(emb, labels=y, features=H)
    df = comp.metrics()
    Z = emb["t-SimCNE"]
    row = df.loc["t-SimCNE"]
    assert row["knn_accuracy"] == pytest.approx(M.knn_accuracy(Z, y, k=15))
    assert row["knn_recall"] == pytest.approx(M.knn_recall(H, Z, k=15))
    assert row["spearman"] == pytest.approx(M.spearman_distance_correlation(H, Z))
    assert row["silhouette"] == pytest.approx(M.silhouette(Z, y))
    comp.wait(30)
    html = comp.table.value
    # The best kNN accuracy is bold, names are escaped.
    assert f"<b>{df['knn_accuracy'].max():.3f}</b>" in html
    assert "&lt;b&gt;evil&lt;/b&gt;" in html and "<b>evil</b>" not in html


def test_save_html_is_self_contained_and_escaped(setup, tmp_path):
    X, y, H, emb, meta = setup
    comp = MethodComparison(emb, labels=y, images=X, metadata=meta, features=H)
    path = comp.save_html(tmp_path / "cmp.html")
    text = path.read_text()
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"<link[^>]+href=[\"']?https?:", text)
    assert "data:image/png;base64," in text
    assert "<img src=x onerror=alert(1)>" not in text.split("<body")[1].split("<script")[0]


def test_errors():
    with pytest.raises(ValueError, match="non-empty dict"):
        MethodComparison({})
    with pytest.raises(ValueError, match="same number of rows"):
        MethodComparison({"a": np.zeros((5, 2)), "b": np.zeros((6, 2))})


def test_from_estimator_fills_panels_in_the_background(small_digits):
    from tsimcne_widgets import Augmentations, TSimCNE

    X, y = small_digits
    est = TSimCNE(backbone="small", total_epochs=(1, 1, 1), batch_size=30,
                  augmentations=Augmentations(hflip=0), random_state=0).fit(X)
    comp = MethodComparison.from_estimator(
        est, X, labels=y, methods=("tsne", "pca"),
        method_params={"tsne": {"n_iter": 60, "early_exaggeration_iter": 30}})
    comp.wait(120)
    assert set(comp.embeddings) == {"t-SimCNE", "t-SNE", "PCA"}
    assert all(z is not None and z.shape == (120, 2) for z in comp.embeddings.values())
    assert comp.panels["t-SNE"].title == "t-SNE"
    assert list(comp.metrics().index) == ["t-SimCNE", "t-SNE", "PCA"]
    np.testing.assert_allclose(comp.embeddings["t-SimCNE"], est.transform(X))


def test_hover_in_one_panel_highlights_the_point_in_the_others(setup):
    X, y, H, emb, meta = setup
    comp = MethodComparison(emb, labels=y, images=X)
    a, b, c = comp.panels.values()
    a._on_custom_msg(a, {"type": "hover", "index": 17}, [])
    assert b.highlight == [17] and c.highlight == [17] and a.highlight == []
    a._on_custom_msg(a, {"type": "hover_out"}, [])
    assert b.highlight == [] and c.highlight == []


def test_gallery_click_highlights_in_the_scatter(setup):
    from tsimcne_widgets.gallery import SelectionGallery

    X, y, H, emb, meta = setup
    comp = MethodComparison(emb, labels=y, images=X)
    panel = comp.panels["t-SNE"]
    g = SelectionGallery(X, labels=y).link(panel)
    panel.selection = [5, 6]
    assert [it["index"] for it in g.items] == [5, 6]
    g.clicked = [6, 1]
    assert panel.highlight == [6]
