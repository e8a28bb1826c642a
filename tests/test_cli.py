"""The ``pvae`` command and the demo: every subcommand in-process, asserting its numbers.

The demo pipeline runs once per session (the ``demo`` fixture); the tests that start a
fresh interpreter are marked ``slow`` (the second tier, ``make test-slow``).
"""

import base64
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

import pvae.app.demo
import pvae.app.metrics
import pvae.app.report
from pvae.app.cli import MODEL_NAMES, TOY_NAMES, build_parser, main
from pvae.app.metrics import evaluate_model, format_metrics
from pvae.app.report import write_report
from pvae.exact.toy import TOYS
from pvae.models import MODELS, VAE, Autoencoder
from pvae.training.checkpoint import load


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The one tiny demo run of the session, shared by the tests that inspect its output.

    Returns the output folder and whether the caller's torch RNG state survived the run.
    """
    out = tmp_path_factory.mktemp("demo")
    before = torch.get_rng_state()
    assert main(["demo", "--smoke", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    return out, torch.equal(before, torch.get_rng_state())


def test_toy_names_match_the_toy_zoo():
    assert sorted(TOY_NAMES) == sorted(TOYS)


def test_demo_writes_metrics_models_figures_and_report(demo):
    demo, rng_untouched = demo
    assert rng_untouched  # run_demo seeds inside and restores the caller's generators
    metrics = json.loads((demo / "metrics.json").read_text())
    assert metrics["settings"]["epochs"] == 1 and metrics["smoke"] is True
    assert metrics["data"] == {
        "name": "digits", "binarize": "dynamic", "image_shape": [8, 8],
        "num_train": 1500, "num_test": 297,
    }  # fmt: skip
    vae, ae = metrics["vae"], metrics["autoencoder"]
    for key in ("elbo", "log_evidence", "reconstruction", "kl_prior", "squared_error"):
        assert np.isfinite(vae[key]), key
    assert not {"log_likelihood", "kl"} & set(vae)  # the 0.1 names are not written
    # the IWAE estimate is a tighter bound than the ELBO, up to Monte Carlo error
    assert vae["log_evidence"] >= vae["elbo"] - 3 * vae["elbo_se"]
    assert vae["elbo"] == pytest.approx(vae["reconstruction"] - vae["kl_prior"], abs=1e-6)
    assert vae["num_particles"] == 8 and vae["num_examples"] == 297
    assert "elbo" not in ae and ae["squared_error"] > 0
    assert (
        len(metrics["history"]["vae"]) == 1
        and "train_loss" in metrics["history"]["autoencoder"][0]
    )
    # the exact parts are exact: Eddy's 0.0776 and the sprinkler's published marginals
    assert metrics["bayes_medical_test"]["posterior"][0] == pytest.approx(
        0.008 / 0.10304, abs=1e-9
    )
    svi = metrics["svi_vs_exact"]
    assert svi["sites"]["rain"]["exact"][1] == pytest.approx(0.7079, abs=1e-4)
    assert svi["kl_qp"] == pytest.approx(svi["log_evidence"] - svi["elbo"], abs=1e-9)
    assert svi["kl_qp"] >= 0

    html = (demo / "report.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert len(metrics["figures"]) == 11
    for name, filename in metrics["figures"].items():
        png = (demo / filename).read_bytes()
        assert png[:4] == b"\x89PNG", name
        # every figure is referenced by name and embedded byte for byte
        assert f'data-file="{filename}"' in html
        assert base64.b64encode(png).decode() in html
    assert len(re.findall(r"<img ", html)) == len(metrics["figures"])

    model = load(demo / metrics["models"]["vae"])
    assert type(model).__name__ == "VAE" and model.z_dim == metrics["settings"]["z_dim"]
    assert type(load(demo / "autoencoder.safetensors")).__name__ == "Autoencoder"
    # the saved VAE is the evaluated one: its test ELBO again, same seeded particles
    from pvae.data import digits

    x_test = digits("dynamic", seed=0).x_test
    again = evaluate_model(model.eval(), x_test, num_particles=8)
    assert again["elbo"] == pytest.approx(vae["elbo"], abs=1e-5)
    assert again["squared_error"] == pytest.approx(vae["squared_error"], abs=1e-5)


def test_report_rewritten_from_the_demo_folder_is_the_same_page(demo, tmp_path):
    demo, _ = demo
    metrics = json.loads((demo / "metrics.json").read_text())
    figures = {k: demo / v for k, v in metrics["figures"].items()}
    page = write_report(tmp_path / "report.html", metrics, figures)
    assert page.read_text() == (demo / "report.html").read_text()
    html = page.read_text()
    vae = metrics["vae"]
    assert f"{vae['log_evidence'] - vae['elbo']:.3f} nats estimates KL(q(z|x)" in html
    # sections are written only for the records present
    del metrics["vae"]
    part = write_report(tmp_path / "part.html", metrics, {}).read_text()
    assert "2. Test metrics" not in part and "6. Bayes' rule, exactly" in part
    assert "<img " not in part and "7. Variational inference" in part


def test_old_report_names_still_import():
    assert pvae.app.report.run_demo is pvae.app.demo.run_demo
    assert pvae.app.report.evaluate_model is pvae.app.metrics.evaluate_model
    assert pvae.app.report.SETTINGS["smoke"]["epochs"] == 2
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pvae.app.report.nope  # noqa: B018


def test_evaluate_model_numbers_and_the_deprecated_names():
    x = torch.bernoulli(torch.rand(20, 6, generator=torch.Generator().manual_seed(0)))
    vae = VAE(6, 2, hidden=(4,), seed=0).eval()
    metrics = evaluate_model(vae, x, num_particles=50)
    assert metrics["elbo"] == pytest.approx(metrics["reconstruction"] - metrics["kl_prior"])
    assert metrics["elbo"] <= metrics["log_evidence"] + 3 * metrics["log_evidence_se"]
    error = ((vae.reconstruct(x) - x) ** 2).sum(-1)
    assert metrics["squared_error"] == pytest.approx(error.mean().item(), rel=1e-6)
    assert metrics["squared_error_se"] == pytest.approx(error.std().item() / np.sqrt(20), rel=1e-5)
    assert evaluate_model(vae, x, num_particles=50) == metrics  # seeded particles
    with pytest.warns(DeprecationWarning, match="'log_likelihood' is deprecated.*'log_evidence'"):
        assert metrics["log_likelihood"] == metrics["log_evidence"]
    with pytest.warns(DeprecationWarning, match="'kl' is deprecated"):
        assert metrics.get("kl") == metrics["kl_prior"]
    assert metrics.get("nope", 3) == 3 and "kl" not in metrics
    line = format_metrics("VAE", metrics)
    assert f"log p(x) ≈ {metrics['log_evidence']:.3f}" in line
    assert f"KL(q || p(z)) {metrics['kl_prior']:.3f}" in line
    ae = evaluate_model(Autoencoder(6, 2, seed=0), x)
    assert sorted(ae) == ["num_examples", "squared_error", "squared_error_se"]
    with pytest.raises(ValueError, match="`num_particles` must be a positive integer"):
        evaluate_model(vae, x, num_particles=0)


def test_model_names_come_from_the_registry():
    assert MODEL_NAMES == MODELS.aliases
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    (model,) = [a for a in train._actions if a.dest == "model"]
    assert model.choices == sorted(MODELS.aliases) == ["ae", "cvae", "vae"]


def test_train_evaluate_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--data", "digits", "--model", "vae", "--z-dim", "2", "--hidden", "8",
            "--epochs", "1", "--num-particles", "4", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "metrics.json").read_text())
    assert record["binarize"] == "dynamic" and record["image_shape"] == [8, 8]
    assert record["world_size"] == 1 and len(record["history"]) == 1
    assert f"ELBO {record['test']['elbo']:.3f}" in printed
    assert (out / "training_curves.png").is_file() and (out / "samples.png").is_file()

    assert (
        main(["evaluate", str(out / "model.safetensors"), "--num-particles", "4", "--json"]) == 0
    )
    evaluated = json.loads(capsys.readouterr().out)
    # the same model, the same binarized test set, the same seed: the same numbers
    assert evaluated["elbo"] == pytest.approx(record["test"]["elbo"], abs=1e-6)
    assert evaluated["num_examples"] == 297

    png = tmp_path / "s.png"
    assert main(["sample", str(out / "model.safetensors"), "-n", "9", "--out", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and "wrote 9 samples" in capsys.readouterr().out


def test_train_autoencoder_on_a_file(tmp_path, capsys):
    x = (np.random.default_rng(0).random((40, 6)) > 0.5).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "ae"
    args = ["train", "--data", str(tmp_path / "x.npy"), "--model", "ae", "--z-dim", "2",
            "--hidden", "--epochs", "2", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    record = json.loads((out / "metrics.json").read_text())
    assert record["model"] == "Autoencoder" and record["test"]["num_examples"] == 4
    assert record["image_shape"] == [1, 6] and len(record["history"]) == 2
    model = load(out / "model.safetensors")
    with torch.no_grad():
        error = ((model.reconstruct(torch.from_numpy(x)) - torch.from_numpy(x)) ** 2).sum(-1)
    assert 0 < float(error.mean()) < 6


def test_bayes_prints_table_and_published_answer(capsys):
    assert main(["bayes", "medical-test"]) == 0
    out = capsys.readouterr().out
    assert "evidence p(x) = 0.10304" in out
    assert "p(disease | x) = {0: 0.9224, 1: 0.07764}" in out
    assert "published p(disease=1 | x) = 0.0776 (Eddy 1982); computed 0.07764" in out
    assert main(["bayes", "toy-vae"]) == 0
    out = capsys.readouterr().out
    assert "one row per data point" in out and "[0] 0.9950" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["bayes", "no-such-toy"],
        ["train", "--epochs", "0", "--out", "x"],
        ["train", "--model", "gan", "--out", "x"],
        ["sample", "m.safetensors"],  # --out is required
        ["train", "--seed", "-1", "--out", "x"],
        ["demo", "--epochs", "1.5"],
        ["frobnicate"],
        [],
    ],
)
def test_wrong_arguments_give_usage_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: pvae" in capsys.readouterr().err


def test_help_everywhere(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"demo", "train", "evaluate", "sample", "bayes"}
    for argv in [[]] + [[c] for c in commands]:
        with pytest.raises(SystemExit) as info:
            main([*argv, "--help"])
        assert info.value.code == 0
        assert "usage: pvae" in capsys.readouterr().out


def test_missing_files_give_one_line_and_no_traceback(tmp_path, capsys):
    for argv in (
        ["evaluate", str(tmp_path / "nope.safetensors")],
        ["sample", str(tmp_path / "nope.safetensors"), "--out", str(tmp_path / "s.png")],
        ["train", "--data", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "o")],
    ):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith("pvae: error: ") and err.count("\n") == 1 and "nope" in err
        assert "Traceback" not in err


def test_bad_values_give_one_line(tmp_path, capsys):
    np.save(tmp_path / "v.npy", np.zeros(5))
    assert main(["train", "--data", str(tmp_path / "v.npy"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pvae: error: the array in v.npy must have shape (N, D)")
    np.save(tmp_path / "grey.npy", np.full((10, 4), 0.5))
    argv = ["train", "--data", str(tmp_path / "grey.npy"), "--binarize", "none",
            "--epochs", "1", "--out", str(tmp_path / "o2")]  # fmt: skip
    assert main(argv) == 1
    assert "bernoulli" in capsys.readouterr().err  # grey pixels under a Bernoulli likelihood


@pytest.mark.slow
def test_python_dash_m_pvae():
    out = subprocess.run(
        [sys.executable, "-m", "pvae", "bayes", "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "invalid choice: 'nope'" in out.stderr


@pytest.mark.slow
def test_help_imports_neither_torch_nor_pyro():
    code = (
        "import sys; from pvae.app.cli import main\n"
        "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({'torch', 'pyro', 'matplotlib'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]") and "vae (VAE)" in out.stdout


def test_same_seed_same_model(tmp_path):
    x = (np.random.default_rng(1).random((30, 4)) > 0.5).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    records = []
    for run in ("a", "b"):
        argv = ["train", "--data", str(tmp_path / "x.npy"), "--z-dim", "2", "--hidden", "4",
                "--epochs", "2", "--num-particles", "3", "--out", str(tmp_path / run)]  # fmt: skip
        assert main(argv) == 0
        records.append(json.loads((tmp_path / run / "metrics.json").read_text()))
    assert records[0]["test"] == records[1]["test"]
    assert [r["train_elbo"] for r in records[0]["history"]] == [
        r["train_elbo"] for r in records[1]["history"]
    ]


# ----------------------------------------------------------------- coursework data, devices


def _posterior_line(out: str, name: str) -> dict[str, float]:
    line = next(s for s in out.splitlines() if s.strip().startswith(f"p({name} | x) = {{"))
    cells = line.split("{", 1)[1].rstrip("}").split(", ")
    return {k: float(v) for k, v in (c.split(": ") for c in cells)}


def test_bayes_takes_a_negative_test(capsys):
    assert main(["bayes", "medical-test", "--test", "negative"]) == 0
    out = capsys.readouterr().out
    by_hand = 0.01 * 0.2 / (0.01 * 0.2 + 0.99 * 0.904)  # p(D | -), Bayes' rule by hand
    assert _posterior_line(out, "disease")["1"] == pytest.approx(by_hand, rel=1e-3)
    assert "evidence p(x) = 0.89696" in out and "published" not in out  # not the default data


def test_bayes_coin_rows_are_labelled_by_theta(capsys):
    assert main(["bayes", "coin-bias", "--flips", "HHTHT", "--num-points", "5"]) == 0
    out = capsys.readouterr().out
    thetas = [0.1, 0.3, 0.5, 0.7, 0.9]
    weights = [t**3 * (1 - t) ** 2 for t in thetas]  # 3 heads, 2 tails, uniform prior
    for t, w in zip(thetas, weights, strict=True):
        row = next(s for s in out.splitlines() if s.startswith(f"theta={t:g} "))
        assert float(row.split()[-1]) == pytest.approx(w / sum(weights), rel=1e-5)
    got = _posterior_line(out, "theta")
    assert list(got) == [f"{t:g}" for t in thetas]
    assert main(["bayes", "coin-bias", "--flips", "1,1,0"]) == 0  # 1/0 with commas
    assert "flips=[1.0, 1.0, 0.0]" in capsys.readouterr().out


def test_bayes_monty_hall_with_your_doors(capsys):
    assert main(["bayes", "monty-hall", "--chosen", "2", "--opened", "0"]) == 0
    got = _posterior_line(capsys.readouterr().out, "car")
    assert got == pytest.approx({"0": 0.0, "1": 2 / 3, "2": 1 / 3}, abs=1e-4)  # switch: 2/3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bayes", "sprinkler", "--test", "positive"], "--test does not apply to sprinkler"),
        (["bayes", "medical-test", "--flips", "HT"], "--flips does not apply to medical-test"),
        (["bayes", "monty-hall", "--chosen", "1", "--opened", "1"], "your own door"),
        (["bayes", "coin-bias", "--flips", "HXT"], "--flips must be heads and tails"),
        (
            ["train", "--model", "ae", "--likelihood", "gaussian", "--out", "x"],
            "--likelihood does not apply to --model ae",
        ),  # fmt: skip
        (
            ["train", "--device", "cuda:7", "--out", "x"]
            if not torch.cuda.is_available()
            else ["train", "--device", "mps", "--out", "x"],
            "PyTorch finds no",
        ),  # fmt: skip
    ],
)
def test_options_that_do_not_apply_are_refused(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("pvae: error: ") and message in err and err.count("\n") == 1


def test_sample_refuses_a_label_for_a_plain_vae(tmp_path, capsys):
    from pvae import save

    path = save(VAE(4, 2, hidden=(3,), seed=0), tmp_path / "vae.safetensors")
    assert main(["sample", str(path), "--label", "3", "--out", str(tmp_path / "s.png")]) == 1
    err = capsys.readouterr().err
    assert "--label does not apply" in err and "ConditionalVAE" in err
    assert not (tmp_path / "s.png").exists()


def test_devices_missing_here_raise_a_value_error_naming_the_fix():
    from pvae import evaluate, fit

    x = (torch.rand(8, 4) > 0.5).float()
    missing = "mps" if torch.cuda.is_available() else "cuda"
    with pytest.raises(ValueError, match=r"`device` is '(cuda|mps)'.*Pass `device='cpu'`"):
        fit(VAE(4, 2, hidden=(3,)), x, epochs=1, device=missing, progress=False)
    with pytest.raises(ValueError, match="`device` must be a device name"):
        evaluate(VAE(4, 2, hidden=(3,)), x, device="gpu", progress=False)
    vae = VAE(4, 2, hidden=(3,), seed=0)
    res = fit(vae, x, epochs=1, device="auto", progress=False)  # picks what is there
    assert res.stopped == "completed"
    expected = "cuda" if torch.cuda.is_available() else "mps" if _mps() else "cpu"
    assert next(vae.parameters()).device.type == expected


def _mps() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())
