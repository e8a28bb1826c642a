"""Fuzz the ``pvae`` command in-process (``pvae.app.cli.main([...])``): every outcome is
success (exit 0), a usage error (exit 2, argparse's message naming the option), or a bad
value or missing file (exit 1, one line ``pvae: error: ...``); never a traceback or another
exception. Heavy subcommands get a missing file, so nothing trains."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from hypothesis import strategies as st

from pvae.app.cli import TOY_NAMES, main

from .contract import TALLY, fuzz

TMP = Path(tempfile.mkdtemp(prefix="pvae-fuzz-cli-"))
MISSING = str(TMP / "missing" / "model.safetensors")

texts = st.one_of(
    st.sampled_from(["0", "1", "-1", "2.5", "nan", "inf", "-inf", "1e309", "", " ", "abc",
                     "9" * 30, "0x10", "1_000", "--", "-", "\x00", "é", "3"]),
    st.text(max_size=6),
)  # fmt: skip
BAYES_OPTIONS = ["--method", "--max-rows", "--test", "--flips", "--num-points", "--chosen",
                 "--opened", "--john-calls", "--mary-calls", "--wet-grass",
                 "--points"]  # fmt: skip
TRAIN_OPTIONS = ["--model", "--z-dim", "--hidden", "--likelihood", "--binarize", "--epochs",
                 "--batch-size", "--lr", "--seed", "--num-particles", "--device"]  # fmt: skip
EVAL_OPTIONS = ["--split", "--binarize", "--num-particles", "--seed", "--device"]
SAMPLE_OPTIONS = ["-n", "--seed", "--label", "--image-shape"]


@st.composite
def options(draw, names):
    argv = []
    for _ in range(draw(st.integers(0, 3))):
        argv += [draw(st.sampled_from([*names, "--nope"])), draw(texts)]
    return argv


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(["bayes", "train", "evaluate", "sample", "demo", "nope", ""]))
    if command == "bayes":
        toy = draw(st.one_of(st.sampled_from(TOY_NAMES), texts))
        return ["bayes", toy, *draw(options(BAYES_OPTIONS))]
    if command == "train":  # a data file that does not exist: nothing trains
        out = str(TMP / f"out{draw(st.integers(0, 3))}")
        return ["train", "--data", MISSING.replace(".safetensors", ".npy"), "--out", out,
                *draw(options(TRAIN_OPTIONS)), "--quiet"]  # fmt: skip
    if command == "evaluate":
        return ["evaluate", MISSING, *draw(options(EVAL_OPTIONS)), "--quiet"]
    if command == "sample":
        return ["sample", MISSING, "--out", str(TMP / "s.png"), *draw(options(SAMPLE_OPTIONS))]
    if command == "demo":  # always one bad value: the demo itself is not fuzzed
        return ["demo", "--epochs", draw(st.sampled_from(["0", "-3", "x", "2.5"])),
                "--out", str(TMP / "demo")]  # fmt: skip
    return [command, *draw(options(TRAIN_OPTIONS))]


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse: usage errors and --help
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def test_cli(tier):
    def check(argv):
        code, out, err = run(argv)
        TALLY["cli"][f"exit {code}"] += 1
        assert "Traceback" not in err and "Traceback" not in out
        assert code in (0, 1, 2), (argv, code, err)
        if code == 2:  # argparse names the option or argument at fault
            assert "error:" in err and (
                "argument" in err or "required" in err or "unrecognized" in err or "invalid" in err
            ), err
        elif code == 1:
            assert err.startswith("pvae: error: ") and err.count("\n") == 1, err
        else:
            assert argv[0] == "bayes" and out

    fuzz(command_lines(), check, tier, fast=60)
