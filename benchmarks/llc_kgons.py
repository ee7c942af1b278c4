"""LLC of the regular k-gons of Chen et al. (2023), n = 6 features in m = 2 dimensions.

The data set: n = 1000 samples with exactly one feature active, magnitude U[0, 1]
(llc_models.one_hot_config). Each k-gon (k = 4, 5, 6) is made a critical point of the loss on
that set (llc_models.fit_kgon), then its LLC is estimated at n beta = 21.7 and 144.8 for a few
localizations. Prints one line per (n beta, gamma): estimate +- standard error per k, and the
chains' mean drift. About a minute on 2 CPU cores; docs/llc.md quotes a run.

    python benchmarks/llc_kgons.py
"""

from __future__ import annotations

import jax
import numpy as np

from toysuper import config, llc, llc_models, train

KS = (4, 5, 6)
SETTINGS = [(21.7, 1.0), (21.7, 10.0), (21.7, 100.0), (144.8, 1.0), (144.8, 10.0), (144.8, 100.0)]


def main() -> None:
    s = config.expand(config.resolve(llc_models.one_hot_config()))[0]
    shape = train.Shape.of(s)
    hp = jax.tree.map(lambda a: a[0], train.inputs([s], 1))
    X = np.asarray(train.dataset(shape, hp))
    X = X.T if shape.columns else X
    fits = {}
    for k in KS:
        params, loss, grad = llc_models.fit_kgon(shape, hp, X, k)
        fits[k] = params
        W, b = params["params"]["W"], params["params"]["b"]
        print(f"{k}-gon: loss {loss:.4f}, |grad| {grad:.1e}, norms {np.linalg.norm(W, axis=0).round(2)}, "
              f"b {b.round(2)}")
    stacked = {"params": {name: np.stack([fits[k]["params"][name] for k in KS]) for name in ("W", "b")}}
    imp = np.stack([hp.imp] * len(KS))
    keys = jax.random.split(jax.random.PRNGKey(0), len(KS))
    for n_beta, gamma in SETTINGS:
        sampler = llc_models.SAMPLER._replace(n_beta=n_beta, gamma=gamma, chains=8, draws=4000)
        chains = llc.estimate(llc_models.loss_fn(shape), X, stacked, keys, sampler, aux=imp,
                              models=True, shared_data=True)
        r = llc.summary(chains, sampler)
        est = "  ".join(f"{k}-gon {m:.2f} +- {e:.2f}" for k, m, e in zip(KS, r["llc"], r["llc_se"]))
        flags = [llc.verdict({key: v[j] for key, v in r.items()}) for j in range(len(KS))]
        print(f"n beta {n_beta:6.1f} gamma {gamma:5.0f}: {est}   mean drift "
              f"{r['mean_drift'].round(2)}  {flags}")


if __name__ == "__main__":
    main()
