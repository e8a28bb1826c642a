r"""The demo behind ``pvae demo``: train, evaluate, compare with exact answers, write a report.

:func:`run_demo` trains a VAE and a deterministic autoencoder of the same size on
scikit-learn's 8x8 digits (dynamically binarized), evaluates both on the 297 held-out
digits (:func:`pvae.app.metrics.evaluate_model`), fits a mean-field guide to the sprinkler
network by SVI and compares it with the exact posterior from enumeration, then writes

* ``report.html`` -- one self-contained page (:func:`pvae.app.report.write_report`:
  figures embedded as base64 PNG, no scripts, no network) that opens offline;
* ``metrics.json`` -- every number in the report;
* one PNG per figure;
* ``vae.safetensors`` and ``autoencoder.safetensors`` -- the trained models, loadable with
  :func:`pvae.load`.

Everything random is seeded by ``seed`` (the models' initial weights, training, the
binarization, SVI, the figures' draws), so the same seed gives the same numbers, and the
caller's random number generators are left as they were.

References
----------
1. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
2. Eddy, D. M. (1982). Probabilistic reasoning in clinical medicine. In *Judgment under
   Uncertainty*, Cambridge University Press.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pvae import _display
from pvae._checks import boolean, optional, positive_int, torch_device
from pvae._checks import seed as check_seed
from pvae._progress import ProgressBar
from pvae._seed import seeded
from pvae.app.metrics import evaluate_model
from pvae.app.report import bayes_record, write_report

__all__ = ["SETTINGS", "DemoResult", "run_demo"]

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


#: The demo's stages, as its progress counts them.
STAGES = (
    "train vae",
    "evaluate vae",
    "train autoencoder",
    "evaluate autoencoder",
    "exact vs SVI",
    "figures",
    "report",
)


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

    def __repr__(self) -> str:
        vae = self.metrics.get("vae", {})
        shown = {k: vae[k] for k in ("elbo", "log_evidence") if k in vae}
        return _display.short_repr(
            "DemoResult",
            {"report": str(self.report), **shown, "figures": len(self.figures)},
        )

    def _repr_html_(self) -> str:
        m = self.metrics
        fields = {"report": str(self.report), "metrics": str(self.metrics_file)}
        for name in ("vae", "autoencoder"):
            for key in ("elbo", "log_evidence", "squared_error"):
                if key in m.get(name, {}):
                    fields[f"{name} {key}"] = m[name][key]
        svi = m.get("svi_vs_exact", {})
        if "kl_qp" in svi:
            fields["SVI KL(q || p(z|x)), sprinkler"] = svi["kl_qp"]
        figures = ", ".join(sorted(self.figures))
        notes = ["test-set nats per example", f"figures: {figures}"]
        return _display.html_record("DemoResult", fields, notes=notes)


def run_demo(
    out: str | Path = "demo-output",
    *,
    epochs: int | None = None,
    seed: int = 0,
    smoke: bool = False,
    progress: bool | None = None,
    device: str | torch.device = "cpu",
) -> DemoResult:
    """Train, evaluate and compare; write the report, metrics, figures and models to ``out``.

    Parameters
    ----------
    out : str or Path
        Output folder (created if needed; files in it are overwritten).
    epochs : int, optional
        Training epochs of each model (default: :data:`SETTINGS`).
    seed : int
        Seed of the initial weights, training, binarization and SVI.
    smoke : bool
        Tiny networks and few samples: checks the pipeline in seconds.
    progress : bool, optional
        Progress of the stages and of each long step (training, evaluation, SVI) on stderr:
        a widget in a notebook, bars on a terminal, plain lines in a log
        (:mod:`pvae._progress`). ``False`` silences it.
    device : str or torch.device
        Where the models train: ``"cpu"`` (default), ``"cuda"``, ``"mps"`` or ``"auto"``
        (a GPU where there is one); a GPU that is not there raises a ``ValueError``.

    Returns
    -------
    DemoResult

    Examples
    --------
    The smoke settings (the test suite runs exactly this once, in ``tests/test_cli.py``):

    >>> SETTINGS["smoke"]["epochs"], SETTINGS["smoke"]["hidden"]
    (2, (16,))
    >>> result = run_demo("demo-output", epochs=1, smoke=True)  # doctest: +SKIP
    >>> sorted(result.models), result.report.name  # doctest: +SKIP
    (['autoencoder', 'vae'], 'report.html')
    """
    epochs = optional(positive_int, "epochs", epochs)
    seed = check_seed("seed", seed)
    smoke = boolean("smoke", smoke)
    progress = optional(boolean, "progress", progress)
    device = torch_device("device", device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these networks are small: one thread is fastest, and fair to others
    try:
        with seeded(seed):
            return _run(Path(out), epochs, seed, smoke, progress, device)
    finally:
        torch.set_num_threads(threads)


def _run(
    out: Path, epochs: int | None, seed: int, smoke: bool, progress: Any, device: Any
) -> DemoResult:
    from pvae import __version__
    from pvae.data import digits
    from pvae.models import VAE, Autoencoder
    from pvae.training.checkpoint import save
    from pvae.training.loop import fit

    start = time.perf_counter()
    cfg = dict(SETTINGS["smoke" if smoke else "full"])
    if epochs is not None:
        cfg["epochs"] = epochs
    out.mkdir(parents=True, exist_ok=True)
    data = digits("dynamic", seed=seed)
    x_test = data.x_test
    train_kw = {
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "lr": cfg["lr"],
        "seed": seed,
        "val_data": x_test,
        "progress": progress,
        "device": device,
    }
    size = (data.x_dim, cfg["z_dim"])
    vae = VAE(*size, hidden=cfg["hidden"], likelihood="bernoulli", seed=seed)
    ae = Autoencoder(*size, hidden=cfg["hidden"], output_activation="sigmoid", seed=seed)
    fits, metrics = {}, {}
    stages = ProgressBar(progress, len(STAGES), desc="demo", unit="stage")
    for name, model, kw in (("vae", vae, {"num_particles": cfg["num_particles"]}), ("ae", ae, {})):
        t = time.perf_counter()
        fits[name] = fit(model, data.train, **train_kw)
        model.cpu()  # evaluation, figures and files on the CPU
        stages.update(stage=f"trained {name}")
        seconds = time.perf_counter() - t
        model.eval()
        metrics[name] = evaluate_model(model, x_test, progress=progress, **kw)
        metrics[name].update(train_seconds=seconds, best_epoch=fits[name].best_epoch)
        stages.update(stage=f"evaluated {name}")
    bayes_record, bayes_table = _medical_test()
    svi_record, comparison = _svi_vs_exact(cfg["svi_steps"], seed, progress)
    stages.update(stage="exact vs SVI")

    files = {}
    for name, fig in _figures(vae, ae, fits, data, cfg, bayes_table, comparison).items():
        files[name] = out / f"{name}.png"
        fig.savefig(files[name], dpi=50 if smoke else 100)  # smoke: checks, not pictures
    stages.update(stage="figures")
    models = {
        "vae": save(vae, out / "vae.safetensors"),
        "autoencoder": save(ae, out / "autoencoder.safetensors"),
    }
    record = {
        "pvae_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "smoke": smoke,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        "data": {
            "name": data.name,
            "binarize": data.binarize,
            "image_shape": list(data.image_shape),
            "num_train": len(data.x_train),
            "num_test": len(x_test),
        },
        "vae": metrics["vae"],
        "autoencoder": metrics["ae"],
        "history": {"vae": fits["vae"].history, "autoencoder": fits["ae"].history},
        "bayes_medical_test": bayes_record,
        "svi_vs_exact": svi_record,
        "figures": {k: v.name for k, v in files.items()},
        "models": {k: Path(v).name for k, v in models.items()},
        "seconds": time.perf_counter() - start,
    }
    metrics_file = out / "metrics.json"
    metrics_file.write_text(json.dumps(record, indent=2))
    report = write_report(out / "report.html", record, files)
    stages.update(stage="report")
    stages.close()
    return DemoResult(out, report, metrics_file, record, files, models)


@torch.no_grad()
def _figures(vae: Any, ae: Any, fits: dict, data: Any, cfg: dict, table: Any, comparison: Any):
    """The report's figures by name (the draws come from the seeded generators)."""
    from pvae import plot

    x_test, y_test, shape = data.x_test, data.y_test, data.image_shape
    values = torch.linspace(-3, 3, 9).tolist()
    dims = list(range(min(cfg["z_dim"], 8)))
    pairs = _pairs(y_test, [(0, 6), (1, 7), (3, 8), (4, 9)])
    return {
        "vae_training_curves": plot.training_curves(
            fits["vae"].history, title="VAE training: ELBO per example (nats)"
        ),
        "ae_training_curves": plot.training_curves(
            fits["ae"].history, title="Autoencoder training: squared reconstruction error"
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
        "latent_space": plot.latent_scatter(vae.encode(x_test)[0], y_test, classes=data.classes),
        "latent_traversal": plot.traversal(
            torch.stack([vae.traverse(x_test[0], d, values) for d in dims]),
            shape,
            values,
            dims=dims,
        ),
        "interpolation": plot.interpolation(
            torch.stack([vae.interpolate(x_test[i], x_test[j], steps=10) for i, j in pairs]), shape
        ),
        "bayes_table": plot.bayes_table(table, title="Bayes' rule: P(disease | positive test)"),
        "exact_vs_svi": plot.posterior_bars(
            comparison,
            labels=("exact p(z | wet grass)", "mean-field q(z) by SVI"),
            title="Sprinkler network: exact posterior vs SVI",
        ),
    }


def _svi_vs_exact(steps: int, seed: int, progress: bool | None = None) -> tuple[dict, Any]:
    """Mean-field SVI on the sprinkler network against its exact posterior."""
    from pvae.exact import enumerate_posterior
    from pvae.exact.toy import sprinkler
    from pvae.vi.comparison import compare
    from pvae.vi.coordinate_ascent import cavi
    from pvae.vi.guides import MeanFieldGuide, fit_guide

    exact = enumerate_posterior(sprinkler)
    guide = MeanFieldGuide(sprinkler, prefix="demo_mf")
    fitted = fit_guide(sprinkler, guide, num_steps=steps, lr=0.2, seed=seed, progress=progress)
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
        "kl_qp": report.kl_qp,
        "kl_pq": report.kl_pq,
        "best_mean_field_kl": best.kl,
        "tv": dict(report.site_tv),
        "sites": sites,
    }
    return record, report


def _medical_test() -> tuple[dict, Any]:
    """Eddy's screening test as a Bayes table (prevalence 1%, sensitivity 80%, FPR 9.6%)."""
    from pvae.exact.bayes import bayes_rule

    table = bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
    return bayes_record(table), table


def _pairs(labels: torch.Tensor, wanted: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Indices of the first test example of each wanted class pair (fallback: 0 and 1)."""
    first = {int(c): int((labels == c).nonzero()[0]) for c in labels.unique()}
    pairs = [(first[a], first[b]) for a, b in wanted if a in first and b in first]
    return pairs or [(0, min(1, len(labels) - 1))]
