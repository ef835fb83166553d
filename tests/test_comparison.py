import re
import time

import numpy as np
import pandas as pd
import pytest
import torch

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


FAST_TSNE = {"n_iter": 60, "early_exaggeration_iter": 30}


@pytest.fixture(scope="module")
def est(small_digits):
    from tsimcne_widgets import Augmentations, TSimCNE

    X, y = small_digits
    return TSimCNE(backbone="small", total_epochs=(1, 1, 1), batch_size=30,
                   augmentations=Augmentations(hflip=0), random_state=0).fit(X)


def test_from_estimator_fills_panels_in_the_background(small_digits, est):
    X, y = small_digits
    comp = MethodComparison.from_estimator(
        est, X, labels=y, methods=("tsne", "pca"), method_params={"tsne": FAST_TSNE})
    comp.wait(120)
    assert set(comp.embeddings) == {"t-SimCNE", "t-SNE", "PCA"}
    assert all(z is not None and z.shape == (120, 2) for z in comp.embeddings.values())
    assert comp.panels["t-SNE"].title == "t-SNE"
    assert list(comp.metrics().index) == ["t-SimCNE", "t-SNE", "PCA"]
    np.testing.assert_allclose(comp.embeddings["t-SimCNE"], est.transform(X))


def test_pixel_baselines_next_to_feature_baselines(small_digits, est):
    from tsimcne_widgets.baselines import embed, pixel_features

    X, y = small_digits
    pixel_params = {**FAST_TSNE, "perplexity": 10}
    comp = MethodComparison.from_estimator(
        est, X, labels=y, methods=("tsne", "tsne:pixels", "pca:pixels"), random_state=3,
        method_params={"tsne": FAST_TSNE, "tsne:pixels": pixel_params})
    comp.wait(120)
    names = ["t-SimCNE", "t-SNE", "t-SNE (pixels)", "PCA (pixels)"]
    assert list(comp.embeddings) == names and list(comp.panels) == names
    assert [p.title for p in comp.panels.values()] == names
    # Features for "tsne" (with its own params), pixels for "tsne:pixels" (with its own).
    # Close, not bitwise: t-SNE in a worker thread may sum in another order, and 60
    # iterations amplify float noise to ~1e-2 on a map ~15 wide (CI saw 8e-3). Other
    # inputs or parameters give a different map altogether (checked below).
    np.testing.assert_allclose(
        comp.embeddings["t-SNE"],
        embed(est.backbone_features(X), "tsne", random_state=3, **FAST_TSNE), atol=0.1)
    P = pixel_features(X)
    np.testing.assert_allclose(
        comp.embeddings["t-SNE (pixels)"], embed(P, "tsne", random_state=3, **pixel_params),
        atol=0.1)
    np.testing.assert_array_equal(comp.embeddings["PCA (pixels)"], embed(P, "pca"))
    assert np.abs(comp.embeddings["t-SNE"] - comp.embeddings["t-SNE (pixels)"]).max() > 1
    # Every panel has a full metrics row; recall is against the backbone features.
    df = comp.metrics()
    assert list(df.index) == names and df.notna().all().all()
    H = est.backbone_features(X)
    assert df.loc["t-SNE (pixels)", "knn_recall"] == pytest.approx(
        M.knn_recall(H, comp.embeddings["t-SNE (pixels)"], k=15))
    comp.selection = [3, 8]
    sdf = comp.selected_dataframe()
    coords = [c for c in sdf.columns if c[:2] in ("x_", "y_")]
    assert coords == [f"{a}_{n}" for n in names for a in "xy"]
    assert len(set(sdf.columns)) == len(sdf.columns)
    assert sdf["x_t-SNE (pixels)"].tolist() == pytest.approx(
        comp.embeddings["t-SNE (pixels)"][[3, 8], 0])


def test_pixel_only_methods_skip_the_backbone_features(small_digits, est, monkeypatch):
    from tsimcne_widgets import baselines

    def boom(*args, **kwargs):
        raise AssertionError("backbone_features must not be called")

    X, y = small_digits
    monkeypatch.setattr(est, "backbone_features", boom)
    comp = MethodComparison.from_estimator(
        est, X, y, methods="tsne:pixels", method_params={"tsne": FAST_TSNE})  # "tsne" applies
    comp.wait(120)
    np.testing.assert_array_equal(
        comp.embeddings["t-SNE (pixels)"],
        baselines.embed(baselines.pixel_features(X), "tsne", random_state=0, **FAST_TSNE))
    df = comp.metrics()
    assert list(df.index) == ["t-SimCNE", "t-SNE (pixels)"]
    assert df["knn_accuracy"].notna().all()
    assert df["knn_recall"].isna().all()  # no backbone features to compare with
    monkeypatch.undo()

    # And feature-only methods do not compute pixel features.
    monkeypatch.setattr(baselines, "pixel_features", boom)
    comp = MethodComparison.from_estimator(est, X, methods=("pca",)).wait(60)
    assert list(comp.embeddings) == ["t-SimCNE", "PCA"]


def test_joined_baseline_maps_features_and_pixels_together(small_digits, est):
    from tsimcne_widgets.baselines import embed, joined_features, pixel_features

    X, y = small_digits
    comp = MethodComparison.from_estimator(
        est, X, y, methods=("pca:features+pixels", "pca:pixels")).wait(60)
    names = ["t-SimCNE", "PCA (features + pixels)", "PCA (pixels)"]
    assert list(comp.embeddings) == names
    assert comp.panels["PCA (features + pixels)"].title == "PCA (features + pixels)"
    H, P = est.backbone_features(X), pixel_features(X)
    np.testing.assert_array_equal(comp.embeddings["PCA (features + pixels)"],
                                  embed(joined_features(H, P), "pca"))
    assert np.abs(comp.embeddings["PCA (features + pixels)"]
                  - comp.embeddings["PCA (pixels)"]).max() > 0.1
    # The backbone features were computed, so recall is measured for every panel.
    assert comp.metrics()["knn_recall"].notna().all()


def test_hog_baseline_maps_the_images_hog_features(small_digits):
    from tsimcne_widgets import Augmentations, TSimCNE, as_images
    from tsimcne_widgets.baselines import embed
    from tsimcne_widgets.hog import hog_features

    X, y = small_digits
    big = as_images(X, resize=16).images.numpy()
    est16 = TSimCNE(backbone="small", total_epochs=(1, 1, 1), batch_size=30,
                    augmentations=Augmentations(hflip=0), random_state=0).fit(big)
    comp = MethodComparison.from_estimator(est16, big, y, methods=("pca:hog",)).wait(60)
    assert list(comp.embeddings) == ["t-SimCNE", "PCA (HOG)"]
    assert comp.panels["PCA (HOG)"].title == "PCA (HOG)"
    want = embed(hog_features(torch.as_tensor(big)).numpy(), "pca")
    np.testing.assert_allclose(comp.embeddings["PCA (HOG)"], want, atol=1e-5)
    # 8x8 digits are too small for 7 cells per side: a clear error, not a torch one, and
    # before the estimator does any work.
    with pytest.raises(ValueError, match="at least 14x14 pixels"):
        MethodComparison.from_estimator(_Untouchable(), X, y, methods=("pca:hog",))


class _Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"estimator.{name} used before the methods were checked")


@pytest.mark.parametrize("kwargs", [
    {"methods": ("tsne", "tsne:foo")},
    {"methods": ("tsne-pixels",)},
    {"methods": ("mds",)},
    {"methods": (None,)},
    {"methods": ("tsne",), "method_params": {"tnse": {}}},
])
def test_from_estimator_rejects_unknown_methods(small_digits, kwargs):
    X, _ = small_digits
    accepted = ("'tsne', 'umap', 'pca', 'tsne:pixels', 'umap:pixels', 'pca:pixels', "
                "'tsne:features+pixels', 'umap:features+pixels', 'pca:features+pixels', "
                "'tsne:hog', 'umap:hog', 'pca:hog'")
    with pytest.raises(ValueError, match=re.escape(accepted)):
        MethodComparison.from_estimator(_Untouchable(), X, **kwargs)


def test_from_estimator_rejects_duplicate_methods(small_digits):
    X, _ = small_digits
    with pytest.raises(ValueError, match="'t-SNE \\(pixels\\)' more than once"):
        MethodComparison.from_estimator(_Untouchable(), X,
                                        methods=("tsne:pixels", "umap", "tsne:pixels"))


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


def test_baseline_badge_names_the_tsne_phase(setup):
    from tsimcne_widgets import baselines

    X, y, H, emb, meta = setup
    comp = MethodComparison({"t-SimCNE": emb["t-SimCNE"], "t-SNE": None}, labels=y)
    panel = comp.panels["t-SNE"]
    badges = []
    real_update = panel.update

    def update(xy, *args, badge=None, **kwargs):
        badges.append(badge)
        time.sleep(0.05)  # a slow view: by now the run's progress has moved on
        return real_update(xy, *args, badge=badge, **kwargs)

    panel.update = update
    run = baselines.start(H, "tsne", callback_every=10, n_iter=30,
                          early_exaggeration_iter=20)
    comp._follow("t-SNE", run)
    comp.wait(60)
    # Each badge names its own frame; the result's frame repeats the last one's.
    shown = [b for i, b in enumerate(badges) if b and (i == 0 or b != badges[i - 1])]
    assert shown == ["t-SNE: exaggeration 10/20", "t-SNE: exaggeration 20/20",
                     "t-SNE: optimising 10/30", "t-SNE: optimising 20/30",
                     "t-SNE: optimising 30/30"][-len(shown):]
    assert "t-SNE: exaggeration 20/20" in shown and "t-SNE: optimising 30/30" in shown
    assert badges[-1] == ""  # cleared when done


def test_height_is_each_panels_height(setup):
    _, y, _, emb, _ = setup
    comp = MethodComparison(emb, labels=y, height=222)
    assert {p.height for p in comp.panels.values()} == {222}
    with pytest.raises(TypeError):
        MethodComparison(emb, labels=y, panel_height=222)
