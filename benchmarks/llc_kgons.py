"""LLC of the regular k-gons of Chen et al. (2023), n = 6 features in m = 2 dimensions, against
their closed forms (toysuper/llc_theory.py KGONS).

The data set: n = 1000 samples with exactly one feature active, magnitude U[0, 1]
(llc_models.one_hot_config). Each k-gon (4+, 4-, 5+, 5-, 6) is made a critical point of the
loss on that set (llc_models.fit_kgon), then its LLC is estimated by llc's default procedure and
at the lab's earlier fixed settings (eps 1e-3, gamma 10, 4 x 2,000 draws, batch 100), beside the
quadratic approximation's LLC at each gamma. Prints one line per k-gon and setting; docs/llc.md
quotes a run.

    python benchmarks/llc_kgons.py
"""

from __future__ import annotations

import time

import jax
import numpy as np

from toysuper import config, llc, llc_models, llc_theory, train

VARIANTS = ((4, 1), (4, -1), (5, 1), (5, -1), (6, 1))
SETTINGS = {"default": llc.Sampler(),
            "old": llc.Sampler(eps=1e-3, gamma=10.0, chains=4, draws=2000, burn_in=500, batch=100,
                               rounds=1)}


def main() -> None:
    s = config.expand(config.resolve(llc_models.one_hot_config()))[0]
    shape = train.Shape.of(s)
    hp = jax.tree.map(lambda a: a[0], train.inputs([s], 1))
    X = np.asarray(train.dataset(shape, hp))
    X = X.T if shape.columns else X
    fits = [llc_models.fit_kgon(shape, hp, X, k, rest=0.05 * sign) for k, sign in VARIANTS]
    names = [f"{k}" if k == shape.n else f"{k}{'+' if sign > 0 else '-'}" for k, sign in VARIANTS]
    stacked = {"params": {p: np.stack([f[0]["params"][p] for f in fits]) for p in ("W", "b")}}
    imp = np.stack([hp.imp] * len(VARIANTS))
    keys = jax.random.split(jax.random.PRNGKey(0), len(VARIANTS))
    for label, sampler in SETTINGS.items():
        t = time.time()
        chains = llc.estimate(llc_models.loss_fn(shape), X, stacked, keys, sampler, aux=imp,
                              models=True, shared_data=True)
        r = llc.summary(chains)
        print(f"{label}: {time.time() - t:.0f} s, gamma {chains.gamma:.3g}, rounds {chains.rounds}, "
              f"batch {chains.batch}, draws {chains.draws}")
        for j, (name, (params, loss, _)) in enumerate(zip(names, fits)):
            ref = llc_theory.KGONS.get(name)
            quad, rank = llc_models.quadratic_llc(shape, hp, X, params, float(r["n_beta"][j]),
                                                  chains.gamma)
            print(f"  {name:3s} loss {loss:.4f} (Chen {ref.loss if ref else float('nan'):.5f})  "
                  f"llc {r['llc'][j]:5.2f} +- {r['llc_se'][j]:.2f} (Chen "
                  f"{ref.lam if ref else float('nan'):.1f}; quadratic {quad:.2f}, rank {rank})  "
                  f"eps {r['eps'][j]:.2e} moved {r['moved'][j]:+.3f}  "
                  f"{llc.verdict({k: v[j] for k, v in r.items()})}")


if __name__ == "__main__":
    main()
