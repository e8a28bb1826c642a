"""The package surface and its architecture (issue 14).

Every name in `pvae.__all__` resolves, import stays light, the 0.1 import paths still work,
no module imports another module's private names, and modules stay of one concept (at most
400 lines, or a reason in their docstring). The layering itself is checked by
`lint-imports` in `make lint` (contracts in pyproject.toml).
"""

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import pvae
from pvae import _compat

PACKAGE = Path(pvae.__file__).parent
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


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
    assert ev.elbo <= ev.log_evidence < 0


@pytest.mark.parametrize("old", sorted(_compat.DEPRECATED))
def test_old_import_paths_still_work_and_say_where_they_moved(old):
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"`{old}` moved to `{_compat.DEPRECATED[old]}`"):
        module = importlib.import_module(old)
    assert module is importlib.import_module(_compat.DEPRECATED[old])
    assert module.__spec__.name == _compat.DEPRECATED[old]  # the real module keeps its spec


@pytest.mark.parametrize("short", sorted(_compat.ALIASES))
def test_short_submodule_names_stay_without_a_warning(short):
    sys.modules.pop(short, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = importlib.import_module(short)
    assert module is importlib.import_module(_compat.ALIASES[short])


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in MODULES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pvae"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        # the private *modules* pvae._traces/_checks/_seed/_compat (and
                        # _display, _progress) are the shared core: `from pvae import _traces`
                        if node.module == "pvae" and alias.name in {
                            "_traces",
                            "_checks",
                            "_seed",
                            "_compat",
                            "_display",
                            "_progress",
                        }:
                            continue
                        offenders.append(f"{path.relative_to(PACKAGE)}: {alias.name}")
    assert offenders == []


def test_modules_are_of_one_concept():
    long = []
    for path in MODULES:
        lines = path.read_text().count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > 400 and "longer than 400 lines because" not in doc:
            long.append(f"{path.relative_to(PACKAGE)} ({lines} lines)")
    assert long == []
