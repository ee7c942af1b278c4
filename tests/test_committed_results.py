"""The guard: every committed results directory holds optima, or says why not.

Each kept model (the lowest-loss seed of a sweep cell) must beat or match its trivial exact
baselines, and no cell's kept model may lose to a neighbouring cell's solution scored at its
settings (toysuper/optima.py). An experiment whose stored results are known to fall short says
why in its `traps` key; a declaration with nothing left to excuse fails too, so it is removed
once the results are retrained.
"""

import tomllib
from pathlib import Path

import pytest

import toysuper
from toysuper import claims, optima, tables

ROOT = Path(__file__).resolve().parent.parent
RESULTS = sorted(p.parent for p in (ROOT / "results").glob("*/summary.json"))


def _declared(res) -> str:
    """The experiment file's `traps` (edited without retraining), else the stored config's."""
    path = ROOT / "experiments" / f"{res.path.name}.toml"
    if path.exists():
        return tomllib.loads(path.read_text()).get("traps", "")
    return res.config.get("traps", "")


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_kept_models_beat_their_baselines_and_neighbours(path):
    res = toysuper.load(path)
    if hasattr(res, "saes"):  # an SAE sweep: every SAE beats the decoder bias alone
        labels = tables.get(res, "sae_optima")  # derived from the stored losses (verdicts.py)
        losing = labels.loc[~labels["beats_trivial"].astype(bool), "sae"].tolist()
        assert not losing or _declared(res), (f"{path.name}: SAEs {losing} do not beat the "
                                              f"trivial solution (the decoder bias alone)")
        return
    kept = optima.kept_models(res)
    verdicts = tables.get(res, "optima").set_index("model").loc[kept]
    cells = tables.get(res, "neighbours")
    trapped = verdicts.index[verdicts["trapped"]].tolist()
    local = cells.loc[cells["local_minimum"], "model"].tolist()
    why = _declared(res)
    if why:
        assert trapped or local, (f"{path.name} declares traps ({why!r}) but every kept model "
                                  f"beats its baselines and neighbours: remove the declaration")
    else:
        assert not trapped, (f"{path.name}: kept models {trapped} lose to a trivial baseline "
                             f"(ratios {verdicts.loc[trapped, 'ratio'].round(3).tolist()})")
        assert not local, f"{path.name}: cells of kept models {local} are local minima"


EXPERIMENTS = sorted((ROOT / "experiments").glob("*.toml"))


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_every_experiment_states_its_claims(path):
    stated = tomllib.loads(path.read_text()).get("claims", [])
    assert stated, f"{path.name} states no [[claims]]: every finding is a claim beside the paper"
    claims.validate(stated, path.name)


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_every_claim_still_holds_on_the_stored_results(path):
    """The guard: each claim measured afresh on the stored results supports its stated verdict,
    and the committed claims.parquet is the table measured now (so docs quoting it are current)."""
    wrong = claims.problems(toysuper.load(path))
    assert not wrong, "\n".join(f"{path.name}: {w}" for w in wrong)
