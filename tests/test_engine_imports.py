"""The engine imports no family: each engine module, imported alone in a fresh process, leaves
every family's modules unloaded (they load when a family is first looked up)."""

import subprocess
import sys

import pytest

# engine.py and outputs.py are not here: outputs imports the figure and derived-table registries
# (the science layer, figures/ and tables.py), which import toy-model modules
ENGINE = ["family", "layout", "plan", "store", "hosts", "config", "upgrade", "report"]
FAMILY_MODULES = ["toysuper.families.toys", "toysuper.families.saes", "toysuper.train",
                  "toysuper.sae_train", "toysuper.models", "toysuper.saes", "toysuper.sources",
                  "toysuper.starts", "toysuper.assemble", "toysuper.polish"]


@pytest.mark.parametrize("module", ENGINE)
def test_an_engine_module_imports_no_family_module(module):
    code = (f"import sys, toysuper.{module}; "
            f"print([m for m in {FAMILY_MODULES!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
