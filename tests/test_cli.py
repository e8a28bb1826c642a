import base64
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from pvae.app.cli import TOY_NAMES, build_parser, main
from pvae.exact.toy import TOYS
from pvae.training.checkpoint import load


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One tiny demo run shared by the tests that inspect its output."""
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--smoke", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    return out


def test_toy_names_match_the_toy_zoo():
    assert sorted(TOY_NAMES) == sorted(TOYS)


def test_demo_writes_metrics_models_figures_and_report(demo, capsys):
    metrics = json.loads((demo / "metrics.json").read_text())
    assert metrics["settings"]["epochs"] == 1 and metrics["smoke"] is True
    assert metrics["data"] == {
        "name": "digits", "binarize": "dynamic", "image_shape": [8, 8],
        "num_train": 1500, "num_test": 297,
    }  # fmt: skip
    vae, ae = metrics["vae"], metrics["autoencoder"]
    for key in ("elbo", "log_likelihood", "reconstruction", "kl", "squared_error"):
        assert np.isfinite(vae[key]), key
    # the IWAE estimate is a tighter bound than the ELBO, up to Monte Carlo error
    assert vae["log_likelihood"] >= vae["elbo"] - 3 * vae["elbo_se"]
    assert vae["elbo"] == pytest.approx(vae["reconstruction"] - vae["kl"], abs=1e-6)
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
    assert svi["elbo_gap"] == pytest.approx(svi["log_evidence"] - svi["elbo"], abs=1e-9)
    assert svi["kl_q_p"] >= 0

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


def test_python_dash_m_pvae():
    out = subprocess.run(
        [sys.executable, "-m", "pvae", "bayes", "nope"], capture_output=True, text=True
    )
    assert out.returncode == 2 and "invalid choice: 'nope'" in out.stderr


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
