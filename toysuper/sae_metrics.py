"""The literature's SAE scores as derived tables, from stored weights and a fixed sample.

    sae_metrics        a row per SAE: Sharkey et al.'s MMCS, the identifiability MCC of codes and
                       the Hungarian decoder matching, each signed and unsigned and averaged over
                       all n true features (sae_scores.literature)
    chanin_absorption  a row per (SAE, parent, child) of a hierarchy: absorption as Chanin et al.
                       2024 define it (sae_scores.chanin)

Codes need data: each SAE reads the first CODE_SAMPLE activations of its own evaluation sample
(the same keys and blocks sae_train.evaluate_one draws, shared by every SAE of a source), so
the tables are a function of the stored weights and settings alone.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pandas as pd

from toysuper import config, needs, sae_scores, sae_train, saes, settings, sources

CODE_SAMPLE = 16384  # activations each SAE is encoded on (the evaluation sample's first blocks)

HIERARCHY = needs.some("data.hierarchy", lambda v: bool(v), "a data.hierarchy (parent and child features)")


def _sweep(res) -> list[dict]:
    """Every SAE's filled settings; resolved again, so settings added to toysuper since the run
    take their defaults (what the run had, as it predates them)."""
    raw = {k: v for k, v in res.config.items()  # without the store's own stamps (schema, ...)
           if k in config.TOP_LEVEL or k == "sweep" or k in settings.sections("saes")}
    return [sources.filled(s) for s in config.expand(config.resolve(raw))]


def _sample(shape, hp):
    """(x [N, n], h [N, m]): the first blocks of the SAE's evaluation sample."""
    blocks = [sae_train.draw(shape, jax.random.fold_in(hp.eval_key, i), hp, shape.batch)
              for i in range(min(math.ceil(CODE_SAMPLE / shape.batch),
                                 math.ceil(shape.eval_batch / shape.batch)))]
    return (np.concatenate([np.asarray(x) for x, _ in blocks]),
            np.concatenate([np.asarray(h) for _, h in blocks]))


def _encoded(res, sweep):
    """Per trained (not diverged) SAE: (id, shape, decoder [m, d], features [m, n], x, f)."""
    cache = {}
    for sae in res.saes.loc[~res.saes["diverged"], "sae"]:
        s = sweep[int(sae)]
        shape = sae_train.SaeShape.of(s)
        hp = jax.tree.map(lambda a: a[0], sae_train.inputs([s], 1))
        key = (np.asarray(hp.eval_key).tobytes(), shape.batch, shape.eval_batch)
        if key not in cache:  # SAEs of one source and [data] share their sample
            cache[key] = _sample(shape, hp)
        x, h = cache[key]
        params = {k: v for k, v in res.params(int(sae)).items() if k not in ("features", "source_W")}
        _, _, f = saes.forward(params, h, shape.kind, shape.k, hp, train=False)
        yield (int(sae), shape, np.asarray(saes.decoder(params, shape.kind)),
               res.params(int(sae))["features"], x, np.asarray(f))


def table(res) -> pd.DataFrame:
    """sae_metrics: a row per trained SAE (module docstring)."""
    rows = [{"sae": sae, **sae_scores.literature(D, F, x, f), "code_sample": len(x)}
            for sae, _, D, F, x, f in _encoded(res, _sweep(res))]
    return pd.DataFrame(rows, columns=None if rows else ["sae"])


def absorption(res) -> pd.DataFrame:
    """chanin_absorption: a row per (trained SAE, parent, child) of its hierarchy."""
    rows = [{"sae": sae, "parent": p, "child": c, **sae_scores.chanin(D, F, x, f, p, c)}
            for sae, shape, D, F, x, f in _encoded(res, _sweep(res)) for p, c in shape.pairs]
    return pd.DataFrame(rows, columns=None if rows else ["sae", "parent", "child"])
