import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from pvae import plot
from pvae.exact.bayes import bayes_rule


def image_of(ax):
    """The array drawn by the only image of an axes."""
    (image,) = ax.get_images()
    return np.ma.filled(image.get_array().astype(float), np.nan)


@pytest.mark.slow
def test_importing_plot_does_not_import_matplotlib():
    code = "import sys, pvae.app.plot; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_reconstructions_tiles_inputs_above_outputs(tmp_path):
    x = torch.rand(12, 6)
    fig = plot.reconstructions(x, 1 - x, (2, 3), n=4)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    top, bottom = (image_of(ax) for ax in fig.axes)
    assert top.shape == (2, 4 * 4 - 1)  # 4 images of width 3 with 1-pixel gaps
    np.testing.assert_allclose(top[:, :3], x[0].reshape(2, 3).numpy(), rtol=1e-6)
    np.testing.assert_allclose(bottom[:, 4:7], (1 - x[1]).reshape(2, 3).numpy(), rtol=1e-6)
    assert np.isnan(top[:, 3]).all()  # the gap between tiles
    fig.savefig(tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="as many rows"):
        plot.reconstructions(x[:3], x[:2], (2, 3))
    with pytest.raises(ValueError, match=r"3x3 = 9 pixels per row, got shape \(12, 6\)"):
        plot.reconstructions(x, x, (3, 3))
    with pytest.raises(ValueError, match=r"`n` must be a positive integer, got 0"):
        plot.reconstructions(x, x, (2, 3), n=0)
    with pytest.raises(ValueError, match=r"`ncols` must be a positive integer, got 2.5"):
        plot.samples(x, (2, 3), ncols=2.5)


def test_samples_grid_layout():
    images = torch.arange(10 * 4, dtype=torch.float32).reshape(10, 4) / 40
    fig = plot.samples(images, (2, 2), ncols=4)
    grid = image_of(fig.axes[0])
    assert grid.shape == (3 * 3 - 1, 4 * 3 - 1)  # 3 rows of 4 (last row partly empty)
    np.testing.assert_allclose(grid[3:5, 0:2], images[4].reshape(2, 2).numpy(), rtol=1e-6)
    assert np.isnan(grid[6:, 6:]).all()  # no image after the tenth
    assert "prior" in fig.get_suptitle()


def test_latent_scatter_first_two_dims_and_pca():
    z = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    fig = plot.latent_scatter(z, torch.tensor([0, 1, 1]), classes=["zero", "one"])
    ax = fig.axes[0]
    assert ax.get_xlabel() == "$z_1$" and ax.get_ylabel() == "$z_2$"
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(offsets, z.numpy())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "one"]
    # points on a line in 3-D: PCA puts all variance on PC1
    t = torch.linspace(-1, 1, 20)[:, None]
    fig = plot.latent_scatter(t * torch.tensor([[1.0, 2.0, 2.0]]))
    ax = fig.axes[0]
    assert ax.get_xlabel() == "PC1 (100% of variance)"
    points = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.abs(points[:, 0]), 3 * np.abs(t[:, 0].numpy()), atol=1e-5)
    np.testing.assert_allclose(points[:, 1], 0, atol=1e-5)
    assert plot.latent_scatter(torch.randn(5, 1)).axes[0].get_xlabel() == "$z_1$"
    with pytest.raises(ValueError, match=r"`labels` must have shape \(3,\)"):
        plot.latent_scatter(z, [0, 1])
    with pytest.raises(ValueError, match=r"`z` must have shape \(N, K\)"):
        plot.latent_scatter(torch.zeros(3))


def test_traversal_and_interpolation_layout():
    grid = torch.rand(3, 5, 4)
    fig = plot.traversal(grid, (2, 2), [-2, -1, 0, 1, 2], dims=[0, 4, 7])
    ax = fig.axes[0]
    assert image_of(ax).shape == (3 * 3 - 1, 5 * 3 - 1)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["$z_{0}$", "$z_{4}$", "$z_{7}$"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-2", "-1", "0", "1", "2"]
    np.testing.assert_allclose(image_of(ax)[3:5, 3:5], grid[1, 1].reshape(2, 2), rtol=1e-6)
    with pytest.raises(ValueError, match=r"len\(values\)=4"):
        plot.traversal(grid, (2, 2), [0, 1, 2, 3])
    strip = plot.interpolation(torch.rand(7, 4), (2, 2))
    assert len(strip.axes) == 1 and image_of(strip.axes[0]).shape == (2, 7 * 3 - 1)
    two_paths = plot.interpolation(torch.rand(2, 7, 4), (2, 2))
    assert image_of(two_paths.axes[0]).shape == (5, 7 * 3 - 1)


def test_training_curves_vae_and_autoencoder():
    rows = [
        {"epoch": e, "train_elbo": -30.0 + e, "val_elbo": -32.0 + e, "reconstruction": -25.0 + e,
         "kl": 5.0 + 0.1 * e, "seconds": 0.1}
        for e in range(1, 5)
    ]  # fmt: skip
    fig = plot.training_curves(rows)
    elbo_ax, terms_ax = fig.axes
    assert [ln.get_label() for ln in elbo_ax.get_lines()] == ["train", "validation"]
    np.testing.assert_allclose(elbo_ax.get_lines()[1].get_ydata(), [-31, -30, -29, -28])
    np.testing.assert_allclose(terms_ax.get_lines()[1].get_ydata(), [5.1, 5.2, 5.3, 5.4])
    assert list(terms_ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4]
    assert terms_ax.get_title() == "ELBO terms (training data)"
    # validation terms, when the history has them, go into the same panel, dashed
    rows[-1].update(val_reconstruction=-20.0, val_kl=6.0)
    terms_ax = plot.training_curves(rows).axes[1]
    assert terms_ax.get_title() == "ELBO terms (dashed: validation)"
    val_kl = terms_ax.get_lines()[3]
    assert val_kl.get_linestyle() == "--" and list(val_kl.get_ydata()) == [6.0]
    ae = plot.training_curves([{"epoch": 1, "train_loss": 3.0}, {"epoch": 2, "train_loss": 2.0}])
    assert [ax.get_title() for ax in ae.axes] == ["Squared error (lower is better)"]
    assert list(ae.axes[0].get_lines()[0].get_ydata()) == [3.0, 2.0]
    with pytest.raises(ValueError, match=r"got keys \['epoch', 'seconds'\]"):
        plot.training_curves([{"epoch": 1, "seconds": 2.0}])


def test_training_curves_read_the_symmetric_history_keys_and_the_trained_objective():
    rows = [
        {"epoch": e, "train_elbo": -30.0 + e, "val_elbo": -32.0 + e,
         "train_objective": -33.0 + e, "train_reconstruction": -25.0 + e,
         "train_kl_prior": 5.0 + 0.1 * e, "val_reconstruction": -26.0 + e,
         "val_kl_prior": 6.0, "beta": 2.0}
        for e in range(1, 4)
    ]  # fmt: skip
    elbo_ax, terms_ax = plot.training_curves(rows).axes
    lines = {ln.get_label(): ln for ln in elbo_ax.get_lines()}
    assert list(lines) == ["train", "validation", r"trained objective ($\beta$-weighted)"]
    np.testing.assert_allclose(
        lines[r"trained objective ($\beta$-weighted)"].get_ydata(), [-32, -31, -30]
    )
    assert terms_ax.get_title() == "ELBO terms (dashed: validation)"
    kl_train, kl_val = terms_ax.get_lines()[2:]
    np.testing.assert_allclose(kl_train.get_ydata(), [5.1, 5.2, 5.3])
    assert kl_val.get_linestyle() == "--" and list(kl_val.get_ydata()) == [6.0, 6.0, 6.0]
    # a row that carries an old name beside the new one is drawn once
    rows[0]["kl"] = rows[0]["train_kl_prior"]
    assert len(plot.training_curves(rows).axes[1].get_lines()[2].get_ydata()) == 3


def test_bayes_table_bars_are_prior_then_posterior():
    table = bayes_rule({"ill": 0.01, "well": 0.99}, {"ill": 0.8, "well": 0.096})
    fig = plot.bayes_table(table)
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [0.01, 0.99, 0.008 / 0.10304, 0.09504 / 0.10304])
    assert "0.103" in fig.axes[0].get_title()
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["ill", "well"]


def test_posterior_bars_one_panel_per_site():
    sites = {
        "rain": (torch.tensor([0.0, 1.0]), torch.tensor([0.3, 0.7]), [0.35, 0.65]),
        "sprinkler": ([0, 1], [0.57, 0.43], [0.6, 0.4]),
    }
    fig = plot.posterior_bars(sites)
    assert [ax.get_title() for ax in fig.axes] == ["rain", "sprinkler"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(heights, [0.3, 0.7, 0.35, 0.65])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "1"]
    with pytest.raises(ValueError, match="`sites` is empty"):
        plot.posterior_bars({})
    with pytest.raises(ValueError, match="`sites` must be a mapping"):
        plot.posterior_bars(3)


def test_ae_vs_vae_two_panels():
    fig = plot.ae_vs_vae(torch.zeros(6, 4), torch.ones(6, 4), (2, 2), ncols=3)
    left, right = (image_of(ax) for ax in fig.axes)
    assert left.shape == right.shape == (5, 8)
    assert np.nanmax(left) == 0 and np.nanmin(right) == 1


def test_posterior_bars_wraps_many_sites_into_rows():
    sites = {f"z[{i}]": ([0, 1], [0.5, 0.5], [0.4, 0.6]) for i in range(7)}
    fig = plot.posterior_bars(sites)
    assert [ax.get_title() for ax in fig.axes] == list(sites)
    assert tuple(fig.get_size_inches()) == pytest.approx((4.2 * 4, 3.6 * 2))
    fig.savefig(io.BytesIO(), format="png")  # draws without a collapsed-layout warning


def test_figures_display_in_jupyter_without_a_backend_ritual():
    """What IPython's display machinery shows for a returned figure: a PNG of its pixels."""
    formatters = pytest.importorskip("IPython.core.formatters")
    import matplotlib.image

    t = bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
    fig = plot.bayes_table(t)
    assert isinstance(fig, Figure) and type(fig).__name__ == "PvaeFigure"
    png = formatters.PNGFormatter()(fig)  # the image/png formatter Jupyter calls
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(io.BytesIO(png))
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()  # bbox "tight": about the figure's size
    assert abs(pixels.shape[1] / width - 1) < 0.2 and abs(pixels.shape[0] / height - 1) < 0.2
    assert pixels[..., :3].std() > 0.05  # bars and text, not a blank image
    assert repr(fig).startswith("<PvaeFigure size 450x360 with 1 Axes")  # the text fallback
