r"""The demo's HTML report: one self-contained page of numbers and figures.

:func:`write_report` turns the demo's ``metrics.json`` record and its PNG files into
``report.html``: figures embedded as base64 PNG, no scripts, no network, so it opens offline
in any browser; a viewport meta and a one-column layout make it fit a phone (390 px) as well
as a desktop (wide tables scroll in their own box). Each section appears when its record is
there: the models (``"vae"`` and ``"autoencoder"``: data, test metrics, reconstructions,
samples, latent space), Bayes' rule (``"bayes_medical_test"``, see :func:`bayes_record`) and
variational inference against the exact posterior (``"svi_vs_exact"``).

The demo itself lives in :mod:`pvae.app.demo`; ``pvae.app.report.run_demo``,
``SETTINGS``, ``DemoResult`` and ``evaluate_model`` (:mod:`pvae.app.metrics`) still import
from here.
"""

from __future__ import annotations

import base64
import html
import importlib
from pathlib import Path
from typing import Any

__all__ = ["bayes_record", "write_report"]

# names that moved to their own modules and still import from here
_MOVED = {
    "run_demo": "pvae.app.demo",
    "SETTINGS": "pvae.app.demo",
    "DemoResult": "pvae.app.demo",
    "evaluate_model": "pvae.app.metrics",
}

# One column that fits any width: at most 1000 px, images scale down, wide tables scroll
# inside their own box (never the page), long words and code wrap; smaller margins on phones.
_CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1000px;margin:2em auto;
padding:0 1em;color:#1d232b;line-height:1.5;font-size:16px;overflow-wrap:break-word}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #d5dbe3;padding-bottom:.2em;margin-top:2em}
.scroll{max-width:100%;overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d5dbe3;padding:.3em .7em;
text-align:right}th{background:#f1f4f8}td:first-child,th:first-child{text-align:left}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #e3e7ed}
figcaption{font-size:.9em;color:#4a5563}.muted{color:#6b7480;font-size:.9em}
code{background:#f1f4f8;padding:0 .25em;border-radius:3px;overflow-wrap:anywhere}
@media (max-width:600px){body{margin:1em auto;padding:0 .75em}h1{font-size:1.6em}
td,th{padding:.25em .4em;font-size:.9em}figure{margin:1em 0}}
"""

_INTRO = (
    "<p>An autoencoder learns a <em>code</em> h = Enc(x) and a reconstruction Dec(h) by "
    "minimising the squared error ‖x − Dec(Enc(x))‖². A variational autoencoder (VAE) puts "
    "a prior p(z) = N(0, I) on the code, a likelihood p(x|z) on the data, and learns an "
    "encoder q(z|x) that approximates the posterior p(z|x) by maximising the ELBO "
    "E<sub>q</sub>[log p(x|z)] − KL(q(z|x) ‖ p(z)) ≤ log p(x). This page trains both on "
    "the same data and puts their numbers and pictures side by side, then checks variational "
    "inference against an exact Bayes'-rule answer.</p>"
)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'pvae.app.report' has no attribute {name!r}")


def bayes_record(table: Any) -> dict:
    """A Bayes table as the JSON record of the report's Bayes'-rule section.

    Examples
    --------
    >>> from pvae.exact.bayes import bayes_rule
    >>> r = bayes_record(bayes_rule({"ill": 0.01, "well": 0.99}, {"ill": 0.8, "well": 0.096}))
    >>> r["hypotheses"], round(r["evidence"], 5)
    (['ill', 'well'], 0.10304)
    """
    return {
        "hypotheses": list(table.hypotheses),
        "prior": table.prior.tolist(),
        "likelihood": table.likelihood.tolist(),
        "joint": table.joint.tolist(),
        "posterior": table.posterior.tolist(),
        "evidence": table.evidence,
    }


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
    return f"<div class=scroll><table><tr>{head}</tr>{body}</table></div>"


def _header(metrics: dict) -> list[str]:
    meta = [f"pvae {html.escape(str(metrics.get('pvae_version', '?')))}"]
    if "created" in metrics:
        meta.append(html.escape(str(metrics["created"])))
    if "seed" in metrics:
        meta.append(f"seed {metrics['seed']}")
    if "seconds" in metrics:
        meta.append(f"{metrics['seconds']:.1f} s in total")
    if metrics.get("smoke"):
        meta.append("<b>smoke settings (tiny networks; numbers not meaningful)</b>")
    return [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>pvae demo report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>pvae demo report</h1>",
        f"<p class=muted>{' · '.join(meta)}</p>",
        _INTRO,
    ]


def _models(metrics: dict, fig: Any) -> list[str]:
    v, a, cfg, d = metrics["vae"], metrics["autoencoder"], metrics["settings"], metrics["data"]
    widths = " → ".join(str(w) for w in cfg["hidden"]) or "(no hidden layer)"
    k = v["num_particles"]
    rows = [
        ["VAE (Bernoulli p(x|z))", v["elbo"], v["log_evidence"], v["reconstruction"],
         v["kl_prior"], v["squared_error"], f"{v['train_seconds']:.1f}"],
        ["Autoencoder (squared error)", "—", "—", "—", "—", a["squared_error"],
         f"{a['train_seconds']:.1f}"],
    ]  # fmt: skip
    header = ["model", "ELBO", f"log p(x) (K={k})", "E_q log p(x|z)", "KL(q‖p(z))",
              "squared error", "train s"]  # fmt: skip
    return [
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
        _table(header, rows),
        f"<p>Standard errors over test examples: ELBO ± {v['elbo_se']:.3f}, log p(x) ± "
        f"{v['log_evidence_se']:.3f}, squared error ± {v['squared_error_se']:.3f} (VAE) and "
        f"± {a['squared_error_se']:.3f} (autoencoder). The gap log p(x) − ELBO = "
        f"{v['log_evidence'] - v['elbo']:.3f} nats estimates KL(q(z|x) ‖ p(z|x)), how far "
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
    ]


def _bayes(b: dict, fig: Any) -> list[str]:
    rows = [
        list(row)
        for row in zip(
            b["hypotheses"], b["prior"], b["likelihood"], b["joint"], b["posterior"], strict=True
        )
    ]
    return [
        "<h2>6. Bayes' rule, exactly</h2>",
        "<p>A screening test for a rare disease (Eddy 1982): prevalence 1%, sensitivity 80%, "
        "false-positive rate 9.6%. After a positive test, p(h | +) = p(+ | h) p(h) / p(+).</p>",
        _table(
            ["hypothesis h", "prior p(h)", "likelihood p(+|h)", "joint", "posterior p(h|+)"], rows
        ),
        f"<p>Evidence p(+) = {b['evidence']:.5f}. The posterior probability of "
        f"{html.escape(str(b['hypotheses'][0]))} is {b['posterior'][0]:.4f}, not "
        f"{b['likelihood'][0]:g}.</p>",
        fig("bayes_table", "Prior against posterior for the screening test."),
    ]


def _svi(s: dict, fig: Any) -> list[str]:
    cause = max(("sprinkler", "rain"), key=lambda site: s["sites"][site]["q"][1])
    rows = [
        [site, f"{val:g}", pe, q]
        for site, rec in s["sites"].items()
        for val, pe, q in zip(rec["support"], rec["exact"], rec["q"], strict=True)
    ]
    return [
        "<h2>7. Variational inference against the exact posterior</h2>",
        f"<p>The sprinkler network (cloudy → sprinkler, rain → wet grass), observed "
        f"{html.escape(s['observed'])}. Exact marginals come from enumerating every joint "
        f"assignment; q is a {html.escape(s['guide'])} fitted by SVI for {s['num_steps']} "
        "steps. A mean-field q cannot represent the correlation between sprinkler and rain "
        "(explaining away), so it stays a positive KL away from the posterior.</p>",
        _table(["site", "value", "exact p(z|x)", "SVI q(z)"], rows),
        _table(
            ["log p(x)", "ELBO(q)", "KL(q ‖ p(z|x))", "KL(p(z|x) ‖ q)", "best mean-field KL"],
            [[s["log_evidence"], s["elbo"], s["kl_qp"], s["kl_pq"], s["best_mean_field_kl"]]],
        ),
        f"<p>The best mean-field answer, found by coordinate ascent (CAVI) from several "
        f"starts, is KL = {s['best_mean_field_kl']:.4f} nats from the posterior; SVI reached "
        f"{s['kl_qp']:.4f} (the optimum puts q({cause} = 1) at exactly 1, a boundary that "
        "gradient steps only approach). Minimising KL(q ‖ p) is mode-seeking: q commits to "
        f"one explanation of the wet grass, {cause}, instead of spreading over both; the other "
        f"direction, KL(p ‖ q) = {s['kl_pq']:.2f}, punishes exactly that.</p>",
        fig("exact_vs_svi", "Exact posterior marginals against the SVI mean-field factors."),
    ]


def write_report(path: str | Path, metrics: dict, figures: dict[str, Path]) -> Path:
    """Write the demo's self-contained HTML page (figures embedded as base64 PNG).

    Parameters
    ----------
    path : str or Path
        The ``.html`` file to write.
    metrics : dict
        As in the demo's ``metrics.json`` (see :func:`pvae.app.demo.run_demo`); each
        section is written when its record is present (see the module docstring).
    figures : dict of str to Path
        PNG files by the names :func:`~pvae.app.demo.run_demo` uses; each is embedded
        once, and a missing one is left out.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    A page with only the Bayes'-rule section (rewrite a demo's page from its folder with
    ``metrics = json.loads((folder / "metrics.json").read_text())`` and
    ``figures = {k: folder / v for k, v in metrics["figures"].items()}``):

    >>> import tempfile
    >>> from pvae.exact.bayes import bayes_rule
    >>> table = bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
    >>> page = write_report(Path(tempfile.mkdtemp()) / "report.html",
    ...                     {"bayes_medical_test": bayes_record(table)}, {})
    >>> text = page.read_text()
    >>> "Evidence p(+) = 0.10304" in text, "<h2>6. Bayes' rule, exactly</h2>" in text
    (True, True)
    """

    def fig(name: str, caption: str) -> str:
        return _figure(name, figures[name], caption) if name in figures else ""

    parts = _header(metrics)
    if "vae" in metrics and "autoencoder" in metrics:
        parts += _models(metrics, fig)
    if "bayes_medical_test" in metrics:
        parts += _bayes(metrics["bayes_medical_test"], fig)
    if "svi_vs_exact" in metrics:
        parts += _svi(metrics["svi_vs_exact"], fig)
    parts += [
        "<h2>Files</h2><p><code>metrics.json</code> holds every number above. The trained "
        'models load with <code>pvae.load("vae.safetensors")</code> and '
        '<code>pvae.load("autoencoder.safetensors")</code>; '
        "<code>pvae sample vae.safetensors -n 64 --out samples.png</code> draws more digits.</p>",
        "</body></html>",
    ]
    path = Path(path)
    path.write_text("\n".join(p for p in parts if p), encoding="utf-8")
    return path
