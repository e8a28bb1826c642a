r"""The demo behind ``pvae demo``: train, evaluate, compare with exact answers, write a report.

:func:`run_demo` trains a VAE and a deterministic autoencoder of the same size on
scikit-learn's 8x8 digits (dynamically binarized), evaluates both on the 297 held-out
digits, fits a mean-field guide to the sprinkler network by SVI and compares it with the
exact posterior from enumeration, then writes

* ``report.html`` -- one self-contained page (figures embedded as base64 PNG, no scripts,
  no network) that opens offline in any browser;
* ``metrics.json`` -- every number in the report;
* one PNG per figure;
* ``vae.safetensors`` and ``autoencoder.safetensors`` -- the trained models, loadable with
  :func:`pvae.training.checkpoint.load`.

The test metrics (:func:`evaluate_model`) are nats per example: the ELBO

.. math:: \mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[\log p(x|z)] - \mathrm{KL}(q(z|x) \,\|\, p(z))
    \le \log p(x),

the importance-weighted estimate of :math:`\log p(x)` with :math:`K` samples (Burda et al.
2016), and the squared reconstruction error :math:`\|x - \hat x\|^2` that the autoencoder
minimises.

References
----------
1. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
2. Burda, Y., Grosse, R. and Salakhutdinov, R. (2016). Importance Weighted Autoencoders. ICLR.
3. Eddy, D. M. (1982). Probabilistic reasoning in clinical medicine. In *Judgment under
   Uncertainty*, Cambridge University Press.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["SETTINGS", "DemoResult", "evaluate_model", "run_demo", "write_report"]

#: Settings of the full demo and of ``--smoke`` (a seconds-long check of the pipeline).
SETTINGS = {
    "full": {
        "epochs": 60,
        "z_dim": 8,
        "hidden": (256,),
        "batch_size": 128,
        "lr": 2e-3,
        "num_particles": 1000,
        "svi_steps": 500,
    },
    "smoke": {
        "epochs": 2,
        "z_dim": 4,
        "hidden": (16,),
        "batch_size": 128,
        "lr": 2e-3,
        "num_particles": 8,
        "svi_steps": 20,
    },
}


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` wrote.

    Attributes
    ----------
    out : pathlib.Path
        The output folder.
    report, metrics_file : pathlib.Path
        ``report.html`` and ``metrics.json``.
    metrics : dict
        The contents of ``metrics.json``.
    figures : dict of str to pathlib.Path
        PNG files by figure name.
    models : dict of str to pathlib.Path
        Saved models by name (``"vae"``, ``"autoencoder"``).
    """

    out: Path
    report: Path
    metrics_file: Path
    metrics: dict
    figures: dict
    models: dict


def evaluate_model(model: Any, x: Any, y: Any = None, *, num_particles: int = 100) -> dict:
    r"""Test metrics of a trained model as a JSON-ready dict (per example).

    A model with an ELBO objective gets ``elbo``, ``log_likelihood`` (importance-weighted,
    ``num_particles`` samples), their standard errors, and the two ELBO terms
    (``reconstruction``, ``kl``) from :func:`pvae.evaluation.evaluate`; every model gets
    ``squared_error`` :math:`\|x - \hat x\|^2` with its standard error over examples.

    Parameters
    ----------
    model : VAE, ConditionalVAE or Autoencoder
        A trained pvae model.
    x : torch.Tensor
        Examples, shape ``(N, D)``.
    y : torch.Tensor, optional
        Labels, for a conditional model.
    num_particles : int
        Importance samples :math:`K` per example.

    Returns
    -------
    dict

    Examples
    --------
    >>> from pvae.models import Autoencoder
    >>> sorted(evaluate_model(Autoencoder(4, 2), torch.rand(10, 4)))
    ['num_examples', 'squared_error', 'squared_error_se']
    """
    out: dict[str, Any] = {"num_examples": int(len(x))}
    args = (x,) if y is None else (x, y)
    if getattr(model, "objective", "elbo") == "elbo":
        from pvae.evaluation import evaluate

        ev = evaluate(model, x if y is None else args, num_particles=num_particles, seed=0)
        out.update(
            elbo=ev.elbo,
            elbo_se=ev.elbo_se,
            log_likelihood=ev.log_likelihood,
            log_likelihood_se=ev.log_likelihood_se,
            reconstruction=ev.reconstruction,
            kl=ev.kl,
            num_particles=ev.num_particles,
        )
    with torch.no_grad():
        error = ((model.reconstruct(*args) - x) ** 2).reshape(len(x), -1).sum(-1)
    out["squared_error"] = float(error.mean())
    out["squared_error_se"] = float(error.std() / math.sqrt(len(x))) if len(x) > 1 else 0.0
    return out


def _svi_vs_exact(steps: int, seed: int) -> tuple[dict, Any]:
    """Mean-field SVI on the sprinkler network against its exact posterior."""
    from pvae.exact import enumerate_posterior
    from pvae.exact.toy import sprinkler
    from pvae.vi.comparison import compare
    from pvae.vi.guides import MeanFieldGuide, cavi, fit_guide

    exact = enumerate_posterior(sprinkler)
    guide = MeanFieldGuide(sprinkler, prefix="demo_mf")
    fitted = fit_guide(sprinkler, guide, num_steps=steps, lr=0.2, seed=seed)
    report = compare(exact, guide, model=sprinkler)
    best = cavi(sprinkler, seed=seed)
    sites = {
        site: {
            "support": [float(v) for v in exact.support(site).reshape(-1)],
            "exact": [float(p) for p in exact.marginal(site)],
            "q": [r[4] for r in report.rows if r[0] == site],
        }
        for site in exact.sites
    }
    record = {
        "toy": "sprinkler",
        "observed": "wet_grass = 1",
        "guide": "mean-field (one factor per site)",
        "num_steps": steps,
        "log_evidence": exact.log_evidence,
        "elbo": fitted.final_elbo,
        "kl_q_p": report.kl_qp,
        "kl_p_q": report.kl_pq,
        "elbo_gap": report.elbo_gap,
        "best_mean_field_kl": best.kl,
        "tv": dict(report.site_tv),
        "sites": sites,
    }
    return record, report


def _medical_test() -> tuple[dict, Any]:
    from pvae.exact.bayes import bayes_rule

    table = bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
    record = {
        "hypotheses": list(table.hypotheses),
        "prior": table.prior.tolist(),
        "likelihood": table.likelihood.tolist(),
        "joint": table.joint.tolist(),
        "posterior": table.posterior.tolist(),
        "evidence": table.evidence,
    }
    return record, table


def run_demo(
    out: str | Path = "demo-output",
    *,
    epochs: int | None = None,
    seed: int = 0,
    smoke: bool = False,
    progress: bool | None = None,
) -> DemoResult:
    """Train, evaluate and compare; write the report, metrics, figures and models to ``out``.

    Parameters
    ----------
    out : str or Path
        Output folder (created if needed; files in it are overwritten).
    epochs : int, optional
        Training epochs of each model (default: :data:`SETTINGS`).
    seed : int
        Seed of training, binarization and SVI.
    smoke : bool
        Tiny networks and few samples, for tests.
    progress : bool, optional
        Progress bars (default: only on a terminal).

    Returns
    -------
    DemoResult

    Examples
    --------
    >>> import tempfile
    >>> result = run_demo(tempfile.mkdtemp(), epochs=1, smoke=True)
    >>> sorted(result.models)
    ['autoencoder', 'vae']
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these networks are small: one thread is fastest, and fair to others
    try:
        return _run_demo(out, epochs, seed, smoke, progress)
    finally:
        torch.set_num_threads(threads)


def _run_demo(
    out: str | Path, epochs: int | None, seed: int, smoke: bool, progress: bool | None
) -> DemoResult:
    import pyro

    from pvae import __version__, plot
    from pvae.data import digits
    from pvae.models import VAE, Autoencoder
    from pvae.training.checkpoint import save
    from pvae.training.fit import fit

    start = time.perf_counter()
    cfg = dict(SETTINGS["smoke" if smoke else "full"])
    if epochs is not None:
        cfg["epochs"] = int(epochs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = digits("dynamic", seed=seed)
    x_test, y_test = data.x_test, data.y_test
    shape = data.image_shape
    train_kw = {
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "lr": cfg["lr"],
        "seed": seed,
        "val_data": x_test,
        "progress": progress,
    }

    pyro.set_rng_seed(seed)  # the initial weights too: same seed, same report
    vae = VAE(data.x_dim, cfg["z_dim"], hidden=cfg["hidden"], likelihood="bernoulli")
    t = time.perf_counter()
    vae_fit = fit(vae, data.train, **train_kw)
    vae_seconds = time.perf_counter() - t
    pyro.set_rng_seed(seed)
    ae = Autoencoder(data.x_dim, cfg["z_dim"], hidden=cfg["hidden"], output_activation="sigmoid")
    t = time.perf_counter()
    ae_fit = fit(ae, data.train, **train_kw)
    ae_seconds = time.perf_counter() - t
    vae.eval()
    ae.eval()

    vae_metrics = evaluate_model(vae, x_test, num_particles=cfg["num_particles"])
    ae_metrics = evaluate_model(ae, x_test)
    vae_metrics.update(train_seconds=vae_seconds, best_epoch=vae_fit.best_epoch)
    ae_metrics.update(train_seconds=ae_seconds, best_epoch=ae_fit.best_epoch)
    bayes_record, bayes_table = _medical_test()
    svi_record, comparison = _svi_vs_exact(cfg["svi_steps"], seed)

    torch.manual_seed(seed)
    with torch.no_grad():
        codes = vae.encode(x_test)[0]
        values = torch.linspace(-3, 3, 9).tolist()
        dims = list(range(min(cfg["z_dim"], 8)))
        traversals = torch.stack([vae.traverse(x_test[0], d, values) for d in dims])
        pairs = _pairs(y_test, [(0, 6), (1, 7), (3, 8), (4, 9)])
        paths = torch.stack([vae.interpolate(x_test[i], x_test[j], steps=10) for i, j in pairs])
        figures = {
            "vae_training_curves": plot.training_curves(
                vae_fit.history, title="VAE training: ELBO per example (nats)"
            ),
            "ae_training_curves": plot.training_curves(
                ae_fit.history, title="Autoencoder training: squared reconstruction error"
            ),
            "vae_reconstructions": plot.reconstructions(
                x_test,
                vae.reconstruct(x_test),
                shape,
                n=12,
                title="VAE: test digits (top) and reconstructions E[x | z = mean of q(z|x)]",
            ),
            "ae_reconstructions": plot.reconstructions(
                x_test,
                ae.reconstruct(x_test),
                shape,
                n=12,
                title="Autoencoder: test digits (top) and reconstructions Dec(Enc(x))",
            ),
            "vae_samples": plot.samples(vae.sample(64), shape),
            "ae_vs_vae": plot.ae_vs_vae(ae.sample(36), vae.sample(36), shape),
            "latent_space": plot.latent_scatter(codes, y_test, classes=data.classes),
            "latent_traversal": plot.traversal(traversals, shape, values, dims=dims),
            "interpolation": plot.interpolation(paths, shape),
            "bayes_table": plot.bayes_table(
                bayes_table, title="Bayes' rule: P(disease | positive test)"
            ),
            "exact_vs_svi": plot.posterior_bars(
                comparison,
                labels=("exact p(z | wet grass)", "mean-field q(z) by SVI"),
                title="Sprinkler network: exact posterior vs SVI",
            ),
        }
    files = {}
    for name, fig in figures.items():
        files[name] = out / f"{name}.png"
        fig.savefig(files[name], dpi=100)
    models = {
        "vae": save(vae, out / "vae.safetensors"),
        "autoencoder": save(ae, out / "autoencoder.safetensors"),
    }

    metrics = {
        "pvae_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "smoke": smoke,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "data": {
            "name": data.name,
            "binarize": data.binarize,
            "image_shape": list(shape),
            "num_train": len(data.x_train),
            "num_test": len(x_test),
        },
        "vae": vae_metrics,
        "autoencoder": ae_metrics,
        "history": {"vae": vae_fit.history, "autoencoder": ae_fit.history},
        "bayes_medical_test": bayes_record,
        "svi_vs_exact": svi_record,
        "figures": {k: v.name for k, v in files.items()},
        "models": {k: Path(v).name for k, v in models.items()},
        "seconds": time.perf_counter() - start,
    }
    metrics_file = out / "metrics.json"
    metrics_file.write_text(json.dumps(metrics, indent=2))
    report = write_report(out / "report.html", metrics, files)
    return DemoResult(out, report, metrics_file, metrics, files, models)


def _pairs(labels: torch.Tensor, wanted: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Indices of the first test example of each wanted class pair (fallback: 0 and 1)."""
    first = {int(c): int((labels == c).nonzero()[0]) for c in labels.unique()}
    pairs = [(first[a], first[b]) for a, b in wanted if a in first and b in first]
    return pairs or [(0, min(1, len(labels) - 1))]


# ----------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1000px;margin:2em auto;
padding:0 1em;color:#1d232b;line-height:1.5}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #d5dbe3;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d5dbe3;padding:.3em .7em;
text-align:right}th{background:#f1f4f8}td:first-child,th:first-child{text-align:left}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #e3e7ed}
figcaption{font-size:.9em;color:#4a5563}.muted{color:#6b7480;font-size:.9em}
code{background:#f1f4f8;padding:0 .25em;border-radius:3px}
"""


def _figure(name: str, path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f'<figure id="{name}"><img src="data:image/png;base64,{data}" '
        f'alt="{html.escape(caption)}" data-file="{html.escape(Path(path).name)}">'
        f"<figcaption>{caption} <span class=muted>({html.escape(Path(path).name)})</span>"
        "</figcaption></figure>"
    )


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e-3 and v != 0 else f"{v:.4f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(path: str | Path, metrics: dict, figures: dict[str, Path]) -> Path:
    """Write the demo's self-contained HTML page (figures embedded as base64 PNG).

    Parameters
    ----------
    path : str or Path
        The ``.html`` file to write.
    metrics : dict
        As in ``metrics.json`` (see :func:`run_demo`).
    figures : dict of str to Path
        PNG files by the names :func:`run_demo` uses; each is embedded once.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    Rewrite the page of an earlier run from its files:

    >>> import json, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = run_demo(folder, epochs=1, smoke=True)
    >>> metrics = json.loads((folder / "metrics.json").read_text())
    >>> figures = {k: folder / v for k, v in metrics["figures"].items()}
    >>> write_report(folder / "report.html", metrics, figures).name
    'report.html'
    """
    v, a, s, b = (
        metrics["vae"],
        metrics["autoencoder"],
        metrics["svi_vs_exact"],
        metrics["bayes_medical_test"],
    )
    cfg, d = metrics["settings"], metrics["data"]
    cause = max(("sprinkler", "rain"), key=lambda site: s["sites"][site]["q"][1])
    widths = " → ".join(str(w) for w in cfg["hidden"]) or "(no hidden layer)"
    k = v["num_particles"]

    def fig(name: str, caption: str) -> str:
        return _figure(name, figures[name], caption) if name in figures else ""

    model_rows = [
        [
            "VAE (Bernoulli p(x|z))",
            v["elbo"],
            v["log_likelihood"],
            v["reconstruction"],
            v["kl"],
            v["squared_error"],
            f"{v['train_seconds']:.1f}",
        ],
        [
            "Autoencoder (squared error)",
            "—",
            "—",
            "—",
            "—",
            a["squared_error"],
            f"{a['train_seconds']:.1f}",
        ],
    ]
    bayes_rows = [
        [h, p, lik, j, post]
        for h, p, lik, j, post in zip(
            b["hypotheses"], b["prior"], b["likelihood"], b["joint"], b["posterior"], strict=True
        )
    ]
    svi_rows = [
        [site, f"{val:g}", pe, q]
        for site, rec in s["sites"].items()
        for val, pe, q in zip(rec["support"], rec["exact"], rec["q"], strict=True)
    ]
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<title>pvae demo report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>pvae demo report</h1>",
        f"<p class=muted>pvae {html.escape(metrics['pvae_version'])} · "
        f"{html.escape(metrics['created'])} · seed {metrics['seed']} · "
        f"{metrics['seconds']:.1f} s in total"
        + (
            " · <b>smoke settings (tiny networks; numbers not meaningful)</b>"
            if metrics["smoke"]
            else ""
        )
        + "</p>",
        "<p>An autoencoder learns a <em>code</em> h = Enc(x) and a reconstruction Dec(h) by "
        "minimising the squared error ‖x − Dec(Enc(x))‖². A variational autoencoder (VAE) puts "
        "a prior p(z) = N(0, I) on the code, a likelihood p(x|z) on the data, and learns an "
        "encoder q(z|x) that approximates the posterior p(z|x) by maximising the ELBO "
        "E<sub>q</sub>[log p(x|z)] − KL(q(z|x) ‖ p(z)) ≤ log p(x). This page trains both on "
        "the same data and puts their numbers and pictures side by side, then checks variational "
        "inference against an exact Bayes'-rule answer.</p>",
        "<h2>1. Data</h2>",
        f"<p>scikit-learn's handwritten digits: {d['num_train']} training and {d['num_test']} "
        f"test images of {d['image_shape'][0]}×{d['image_shape'][1]} pixels (the first 1500 "
        "images train, the last 297 test). Pixels are binarized: a fresh Bernoulli draw per "
        "training batch (dynamic binarization), one fixed draw for the test set.</p>",
        "<h2>2. Test metrics</h2>",
        f"<p>Both models: 64 → {widths} → {cfg['z_dim']} → {widths} → 64 units, "
        f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, Adam lr {cfg['lr']}. Nats per "
        f"test example; log p(x) is the importance-weighted estimate with K = {k} samples per "
        "example. The autoencoder has no likelihood, so it has no ELBO and no log p(x).</p>",
        _table(
            [
                "model",
                "ELBO",
                f"log p(x) (K={k})",
                "E_q log p(x|z)",
                "KL(q‖p(z))",
                "squared error",
                "train s",
            ],
            model_rows,
        ),
        f"<p>Standard errors over test examples: ELBO ± {v['elbo_se']:.3f}, log p(x) ± "
        f"{v['log_likelihood_se']:.3f}, squared error ± {v['squared_error_se']:.3f} (VAE) and "
        f"± {a['squared_error_se']:.3f} (autoencoder). The gap log p(x) − ELBO = "
        f"{v['log_likelihood'] - v['elbo']:.3f} nats estimates KL(q(z|x) ‖ p(z|x)), how far "
        "the encoder is from the true posterior.</p>",
        fig(
            "vae_training_curves",
            "VAE: ELBO on training and validation (test) data per epoch, and its two terms.",
        ),
        fig("ae_training_curves", "Autoencoder: squared reconstruction error per epoch."),
        "<h2>3. Reconstructions</h2>",
        fig(
            "vae_reconstructions",
            "VAE: test inputs above their reconstructions (pixel "
            "probabilities of p(x | z) at the posterior mean code).",
        ),
        fig("ae_reconstructions", "Autoencoder: test inputs above Dec(Enc(x))."),
        "<h2>4. Generating new digits</h2>",
        fig("vae_samples", "VAE: decoded draws z ~ p(z) = N(0, I) (pixel probabilities)."),
        fig(
            "ae_vs_vae",
            "Random codes decoded by the autoencoder (left) and draws from the "
            "VAE's prior (right). Nothing made the autoencoder's code space a distribution: "
            "its decoder never saw most of these codes, so they decode to blurred mixtures "
            "of digits. The VAE's decoder was trained on codes that cover its prior.",
        ),
        "<h2>5. The latent space</h2>",
        fig(
            "latent_space",
            "Encoder means of the test digits, coloured by digit (PCA to two "
            "dimensions when z has more than two).",
        ),
        fig(
            "latent_traversal",
            "Latent traversal: the code of one test digit with one "
            "coordinate set to −3 … 3, the others fixed.",
        ),
        fig(
            "interpolation",
            "Interpolation: decoding the straight line between the codes of "
            "two test digits (0→6, 1→7, 3→8, 4→9).",
        ),
        "<h2>6. Bayes' rule, exactly</h2>",
        "<p>A screening test for a rare disease (Eddy 1982): prevalence 1%, sensitivity 80%, "
        "false-positive rate 9.6%. After a positive test, p(h | +) = p(+ | h) p(h) / p(+).</p>",
        _table(
            ["hypothesis h", "prior p(h)", "likelihood p(+|h)", "joint", "posterior p(h|+)"],
            bayes_rows,
        ),
        f"<p>Evidence p(+) = {b['evidence']:.5f}. The posterior probability of disease is "
        f"{b['posterior'][0]:.4f}, not 0.8.</p>",
        fig("bayes_table", "Prior against posterior for the screening test."),
        "<h2>7. Variational inference against the exact posterior</h2>",
        f"<p>The sprinkler network (cloudy → sprinkler, rain → wet grass), observed "
        f"{html.escape(s['observed'])}. Exact marginals come from enumerating every joint "
        f"assignment; q is a {html.escape(s['guide'])} fitted by SVI for {s['num_steps']} "
        "steps. A mean-field q cannot represent the correlation between sprinkler and rain "
        "(explaining away), so it stays a positive KL away from the posterior.</p>",
        _table(["site", "value", "exact p(z|x)", "SVI q(z)"], svi_rows),
        _table(
            ["log p(x)", "ELBO(q)", "KL(q ‖ p(z|x))", "KL(p(z|x) ‖ q)", "best mean-field KL"],
            [[s["log_evidence"], s["elbo"], s["kl_q_p"], s["kl_p_q"], s["best_mean_field_kl"]]],
        ),
        f"<p>The best mean-field answer, found by coordinate ascent (CAVI) from several "
        f"starts, is KL = {s['best_mean_field_kl']:.4f} nats from the posterior; SVI reached "
        f"{s['kl_q_p']:.4f} (the optimum puts q({cause} = 1) at exactly 1, a boundary that "
        "gradient steps only approach). Minimising KL(q ‖ p) is mode-seeking: q commits to "
        f"one explanation of the wet grass, {cause}, instead of spreading over both; the other "
        f"direction, KL(p ‖ q) = {s['kl_p_q']:.2f}, punishes exactly that.</p>",
        fig("exact_vs_svi", "Exact posterior marginals against the SVI mean-field factors."),
        "<h2>Files</h2><p><code>metrics.json</code> holds every number above. The trained "
        'models load with <code>pvae.load("vae.safetensors")</code> and '
        '<code>pvae.load("autoencoder.safetensors")</code>; '
        "<code>pvae sample vae.safetensors -n 64 --out samples.png</code> draws more digits.</p>",
        "</body></html>",
    ]
    path = Path(path)
    path.write_text("\n".join(p for p in parts if p), encoding="utf-8")
    return path
