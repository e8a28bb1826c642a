"""The package surface: every name in `pvae.__all__` resolves, and import stays light."""

import subprocess
import sys

import pvae


def test_every_public_name_resolves():
    missing = [name for name in pvae.__all__ if getattr(pvae, name, None) is None]
    assert missing == []


def test_design_contract_names_are_public():
    contract = """bayes_rule enumerate_posterior kl_divergence total_variation elbo_decomposition
    compare VAE Autoencoder ConditionalVAE fit evaluate save load to_inference_data
    psis_khat""".split()
    assert set(contract) <= set(pvae.__all__)


def test_import_is_light():
    heavy = "{'torch', 'pyro', 'arviz', 'matplotlib'}"
    code = f"import sys, pvae; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_raises_attribute_error():
    try:
        pvae.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_readme_quickstart_runs_and_says_what_it_prints():
    """The README's quickstart is executed, so it stays true as features land."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert round(namespace["t"].prob("disease"), 4) == 0.0776
    assert abs(float(namespace["post"].marginal("burglary")[1]) - 0.2842) < 1e-4
    ev = namespace["ev"]
    assert ev.elbo <= ev.log_likelihood < 0
