"""Progress on every long step: plain lines in a log or pipe, a bar on a terminal, silence on ask.

pytest's captured stderr is not a terminal, as a CI log or ``2> log`` is not: there progress
is one plain line every few seconds (:data:`pvae._progress.PLAIN_INTERVAL`, set to 0 here so
every step writes one) with the step count, the ELBO and the time left, and the numbers in
the lines must be the ones the call returns.
"""

import io
import re

import pytest
import torch

from pvae import _progress
from pvae.app.cli import build_parser, main
from pvae.evaluation import evaluate
from pvae.exact import toy
from pvae.models import VAE
from pvae.training.loop import fit
from pvae.vi import MeanFieldGuide, fit_guide

LINE = re.compile(
    r"^(?P<desc>\w+): (?P<unit>\w+) (?P<n>\d+)/(?P<total>\d+)(?P<post>.*) \| "
    r"(?P<elapsed>[\d.]+ s|\d+ min \d+ s)(?:, ~(?P<left>.+) left|, done)?$"
)


@pytest.fixture
def every_step(monkeypatch):
    monkeypatch.setattr(_progress, "PLAIN_INTERVAL", 0.0)


def _lines(err: str, desc: str) -> list[re.Match]:
    found = [LINE.match(line) for line in err.splitlines()]
    return [m for m in found if m is not None and m["desc"] == desc]


def _binary(n: int = 64, d: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(n, d, generator=g) > 0.5).float()


def test_fit_writes_plain_lines_with_elbo_and_time_left(every_step, capsys):
    x = _binary()
    res = fit(VAE(12, 2, hidden=(8,), seed=0), x, epochs=3, batch_size=32, seed=0)
    lines = _lines(capsys.readouterr().err, "fit")
    assert [(m["unit"], int(m["n"]), int(m["total"])) for m in lines] == [
        ("epoch", 1, 3),
        ("epoch", 2, 3),
        ("epoch", 3, 3),
    ]
    assert lines[0]["left"] is not None and lines[-1]["left"] is None  # the last says "done"
    for m, row in zip(lines, res.history, strict=True):
        assert f"elbo={row['train_elbo']:.4g}" in m["post"]


def test_plain_lines_are_spaced_by_the_interval():
    log = io.StringIO()
    with _progress.ProgressBar(None, 1000, desc="fit", unit="epoch", file=log, interval=3600) as b:
        for _ in range(1000):
            b.update(elbo=-1.0)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and LINE.match(lines[0])["n"] == "1000"  # only the closing line


def test_progress_false_is_silent_everywhere(every_step, capsys):
    x = _binary()
    vae = VAE(12, 2, hidden=(8,), seed=0)
    fit(vae, x, epochs=2, batch_size=32, progress=False)
    evaluate(vae, x, num_particles=4, progress=False)
    fit_guide(toy.medical_test, MeanFieldGuide(toy.medical_test), num_steps=5, progress=False)
    assert capsys.readouterr().err == ""


def test_evaluate_and_fit_guide_lines_carry_their_numbers(every_step, capsys):
    x = _binary(40)
    vae = VAE(12, 2, hidden=(8,), seed=0)
    ev = evaluate(vae, x, num_particles=8, max_elements=8 * 12 * 10, seed=0)  # 4 chunks of 10
    lines = _lines(capsys.readouterr().err, "evaluate")
    assert [int(m["n"]) for m in lines] == [10, 20, 30, 40] and lines[0]["unit"] == "example"
    assert f"elbo={ev.elbo:.4g}" in lines[-1]["post"]
    r = fit_guide(toy.medical_test, MeanFieldGuide(toy.medical_test), num_steps=4, lr=0.2)
    lines = _lines(capsys.readouterr().err, "fit_guide")
    assert [int(m["n"]) for m in lines] == [1, 2, 3, 4]
    assert f"elbo={r.elbos[-1]:.4g}" in lines[-1]["post"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_tqdm_bar():
    term = _Terminal()
    with _progress.ProgressBar(True, 4, desc="fit", unit="epoch", file=term) as bar:
        for _ in range(4):
            bar.update(elbo=-2.5)
    assert bar.mode == "terminal"
    out = term.getvalue()
    assert "fit: 100%" in out and "4/4" in out and "elbo=-2.5" in out


def test_cli_progress_flags_parse():
    argv = ["train", "--out", "c"]
    assert build_parser().parse_args(argv).progress is None  # on, in the look of stderr
    assert build_parser().parse_args([*argv, "--no-progress"]).progress is False
    assert build_parser().parse_args([*argv, "-q"]).quiet is True  # main() turns it off


@pytest.mark.slow
def test_cli_quiet_silences_progress(every_step, tmp_path, capsys):
    argv = ["train", "--epochs", "1", "--hidden", "4", "--z-dim", "2", "--num-particles", "2"]
    argv += ["--batch-size", "512"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert _lines(err, "fit")[-1]["n"] == "1" and _lines(err, "evaluate")
    for flag in ("--quiet", "--no-progress"):
        assert main([*argv, "--out", str(tmp_path / "b"), flag]) == 0
        assert capsys.readouterr().err == ""
