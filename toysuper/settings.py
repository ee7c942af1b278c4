"""Every setting of an experiment, declared once: default, check, role and the value old results imply.

A setting has a dotted name (`data.density`) and one of three roles:
  shape  fixes array shapes or control flow, so it is compiled into the program: models that
         differ in it train in separate programs (train.Shape is built from these);
  model  a per-model input of the compiled program (train.Hyper), so any mix of values trains
         in one program;
  host   read only on the host (how a sweep is cut into chunks); results never depend on it.
Defaults, validation, the compiled Shape, the per-model inputs, key salts and the upgrade of old
results directories (toysuper/upgrade.py) all derive from this table: a new setting is one entry
here plus the code that uses it. Cross-setting rules (steps a multiple of log_every, ...) live in
config.validate.
"""

from __future__ import annotations

import copy
import importlib
import math
import re
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from toysuper import data
from toysuper import family as family_mod
from toysuper.errors import ConfigError

_MISSING = object()


class Setting(NamedTuple):
    key: str              # dotted name, "train.lr"
    default: object
    check: Callable       # (key, value, settings) -> None, raises ConfigError
    role: str             # "shape", "model" or "host" (module docstring)
    field: str | None = None  # its attribute on train.Shape / train.Hyper, when it has one
    doc: str = ""
    # the value a results directory written before this setting existed was made with
    legacy: object = _MISSING
    # whether the setting enters the model's key salt: "always", "when_set" (only when not at
    # its default, for settings added after results were published, so old models keep their
    # keys), or None (train and run settings: a model's own seed stream is not salted by them)
    salt: str | None = None

    @property
    def old(self):
        """The value results from before this setting existed were made with."""
        return self.default if self.legacy is _MISSING else self.legacy


def _is_number(v) -> bool:
    """A finite int or float: nan and inf are valid TOML, but no setting means them (a NaN
    learning rate diverges, and NaN != NaN would make its results never resumable)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _not_finite(key, v) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(f"{key} = {v!r} must be a finite number (not nan or inf)")


def positive_int(key, v, settings=None):
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ConfigError(f"{key} = {v!r} must be a positive integer")


def nonneg_int(key, v, settings=None):
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise ConfigError(f"{key} = {v!r} must be an integer >= 0")


def one_of(choices):
    """A check that the value is a name in `choices`: a registry dict or a tuple, or a
    family's registry named "module:NAME", read when checked (so this table imports no
    family's module, and a kind registered later is known)."""
    def check(key, v, settings=None):
        if isinstance(choices, str):
            module, name = choices.split(":")
            allowed = getattr(importlib.import_module(module), name)
        else:
            allowed = choices
        if not isinstance(v, str) or v not in allowed:
            raise ConfigError(f"{key} = {v!r} is not one of: {', '.join(allowed)}")
    return check


def positive_number(what):
    def check(key, v, settings=None):
        _not_finite(key, v)
        if not _is_number(v) or v <= 0:
            raise ConfigError(f"{key} = {v!r} must be {what}")
    return check


def nonneg_number(key, v, settings=None):
    _not_finite(key, v)
    if not _is_number(v) or v < 0:
        raise ConfigError(f"{key} = {v!r} must be a number >= 0")


def finite_number(key, v, settings=None):
    if not _is_number(v) or not math.isfinite(v):
        raise ConfigError(f"{key} = {v!r} must be a finite number")


def boolean(key, v, settings=None):
    if not isinstance(v, bool):
        raise ConfigError(f"{key} = {v!r} must be true or false")


def n_features(settings: dict) -> int:
    """n of a toy model (model.n_features) or of an SAE's source (source.n_features)."""
    return settings.get("model.n_features", settings.get("source.n_features", 1))


def feature_sets(key, v, settings):
    n = n_features(settings)
    if not (isinstance(v, list) and all(isinstance(m, list) and len(m) >= 2 and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in m) for m in v)):
        raise ConfigError(f"{key} = {v!r} must be a list of sets, each a list of at least two "
                          f"feature indices in 0..{n - 1}, e.g. [[0, 1], [2, 3]]")


def per_feature(key, v, settings):
    feature_vector(key, v, n_features(settings))


SCHEDULES = ("constant", "cosine")
EVALS = ("sample", "strata")
BIAS_INITS = ("zero", "mean", "normal")
WEIGHT_INITS = ("xavier", "unit")
INIT_SOURCES = ("random", "construction")
ON_DIVERGE = ("keep", "stop")


def init_source(key, v, settings=None):
    """"random", "construction" or a results directory (toysuper/starts.py)."""
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{key} = {v!r} must be 'random', 'construction' or a results directory")
    if v not in INIT_SOURCES and not (Path(v) / "config.toml").is_file():
        raise ConfigError(f"{key} = {v!r} is neither 'random', 'construction' nor a results "
                          f"directory (no {Path(v) / 'config.toml'})")


def relative_radii(key, v, settings=None):
    """attack.eps: a radius relative to the input's norm in (0, 1], or a non-empty list of them."""
    values = v if isinstance(v, list) else [v]
    if not values or not all(_is_number(e) and 0 < e <= 1 for e in values):
        raise ConfigError(f"{key} = {v!r} must be a number in (0, 1] or a non-empty list of them, "
                          f"e.g. [0.05, 0.1]: each a perturbation's norm over the input's norm")


def relative_radius(key, v, settings=None):
    """train.adversarial_eps: a radius relative to the input's norm in [0, 1]."""
    if not _is_number(v) or not 0 <= v <= 1:
        raise ConfigError(f"{key} = {v!r} must be a number in [0, 1]: the perturbation's norm over "
                          f"the input's norm (0: no perturbation)")


TABLE = (
    # [model]
    Setting("model.kind", "relu", one_of("toysuper.models:MODELS"), "shape", "kind", salt="always",
            doc="which network (toysuper/models.py)"),
    Setting("model.n_features", 20, positive_int, "shape", "n", salt="always", doc="n"),
    Setting("model.n_hidden", 5, positive_int, "shape", "m", salt="always", doc="m"),
    # [data]
    Setting("data.law", "uniform", one_of(data.LAWS), "shape", "law", salt="always",
            doc="magnitude law of an active feature (toysuper/data.py)"),
    Setting("data.density", 1.0, per_feature, "model", salt="always",
            doc="p_i = 1-S: a number, or a list of n"),
    Setting("data.importance", 1.0, per_feature, "model", salt="always",
            doc="I_i: a number, a list of n, {decay = r} or {ratio = k}"),
    # lists of sets of feature indices, e.g. [[0, 1], [2, 3]]
    Setting("data.correlated", [], feature_sets, "model", salt="when_set",
            doc="sets of features active together"),
    Setting("data.anticorrelated", [], feature_sets, "model", salt="when_set",
            doc="sets of features of which at most one is active"),
    # Finite data (docs/finite_data.md): T > 0 trains on one fixed set of T samples drawn from
    # the model's own key, reused every step (all of it when train.batch >= T, else random
    # minibatches of train.batch rows); the final loss is still measured on fresh samples.
    Setting("data.dataset_size", 0, nonneg_int, "shape", "dataset", salt="when_set",
            doc="T, the training set's size (0: fresh samples every step)"),
    # every sample scaled to unit L2 norm (an all-zero sample stays zero), training and test
    Setting("data.unit_norm", False, boolean, "shape", "unit_norm", salt="when_set",
            doc="scale each sample to unit L2 norm"),
    # [train]: defaults follow the reference notebook (docs/data_and_models.md)
    Setting("train.steps", 10_000, positive_int, "shape", "steps"),
    Setting("train.batch", 1024, positive_int, "shape", "batch"),
    Setting("train.lr", 1e-3, positive_number("a positive number"), "model", "lr"),
    # Decoupled (AdamW) weight decay. Negative: weight growth, each feature's embedding column
    # pulled towards unit norm at rate |wd| (docs/width_scaling.md; tied models only).
    Setting("train.weight_decay", 0.01, finite_number, "model", "wd"),
    # whether the decay also acts on the output bias b: AdamW in the reference notebook decays
    # every parameter; width-scaling studies decay the weights only
    Setting("train.decay_bias", True, boolean, "shape", "decay_bias"),
    Setting("train.schedule", "constant", one_of(SCHEDULES), "shape", "schedule"),
    Setting("train.warmup", 0, nonneg_int, "shape", "warmup"),
    Setting("train.log_every", 100, positive_int, "shape", "log_every"),
    Setting("train.eval_batch", 65_536, positive_int, "shape", "eval_batch"),
    # "sample": final loss on eval_batch fresh points. "strata": every pattern of active
    # features weighted by its exact probability, magnitudes sampled (small n only).
    Setting("train.eval", "sample", one_of(EVALS), "shape", "eval"),
    # copies of the weights kept at this many about log-spaced steps (learning dynamics)
    Setting("train.snapshots", 0, nonneg_int, "shape", "snapshots"),
    # "fast": one hashed draw per entry; "reference": the notebook's two threefry draws.
    # Same law, different random numbers (toysuper/data.py).
    Setting("train.sampler", "fast", one_of(data.SAMPLERS), "shape", "sampler", legacy="reference"),
    Setting("train.seed", 0, nonneg_int, "model"),
    # the output bias at initialisation: "zero" as the reference notebook, or "mean", each
    # output's optimal constant E[target_i] (p_i/2 for magnitudes U[0, 1]): an output ReLU
    # started at b = 0 with a negative pre-activation never fires and never learns (optima.py)
    # ..., or "normal": b_i ~ N(0, 1), as width-scaling studies start (docs/width_scaling.md)
    Setting("train.bias_init", "zero", one_of(BIAS_INITS), "shape", "bias_init"),
    # the random start of the weights: "xavier" (Xavier-normal, the reference notebook: a
    # feature's column has norm ~ sqrt(2m / (m + n)), small when n >> m) or "unit" (every entry
    # N(0, 1/m): each feature starts at norm ~ 1, as width-scaling studies start; under weight
    # decay a feature that starts small may never grow, one that starts at 1 must be decayed away)
    Setting("train.weight_init", "xavier", one_of(WEIGHT_INITS), "shape", "weight_init",
            doc="random start of the weights: Xavier-normal or N(0, 1/m) per entry"),
    # where training starts (toysuper/starts.py): "random" (Flax's initialisers), "construction"
    # (the top-k exact solution of toysuper/optima.py) or a results directory (its solution for
    # the same task, else the one of its kept solutions that scores lowest on this task)
    Setting("train.init_from", "random", init_source, "model", salt=None),
    # a warm start's weights (not its output bias) get Gaussian noise of this standard deviation,
    # drawn from the model's own key: seeds of one warm start then differ
    Setting("train.init_noise", 0.01, nonneg_number, "model", "noise"),
    # Adversarial training (docs/adversarial.md): each training example replaced by its attacked
    # version, the worst perturbation of norm <= train.adversarial_eps ||x|| found in this many
    # ascent steps from a random point of the sphere (toysuper/attack.py); 0: clean training.
    # The final loss is still the clean one. Neither enters the key: seeds of clean and attacked
    # training start from the same weights and see the same batches.
    Setting("train.adversarial_steps", 0, nonneg_int, "shape", "adv_steps",
            doc="ascent steps of the attack on each training example (0: clean training)"),
    Setting("train.adversarial_eps", 0.1, relative_radius, "model", "adv_eps",
            doc="the training attack's radius, relative to the input's norm"),
    # [run]: models per compiled chunk (rounded up to whole groups of models on every device; a
    # chunk is saved as soon as it finishes) and the memory one chunk may use per device (CPU
    # devices share the host's); the smaller bound wins. Results do not depend on either.
    Setting("run.chunk_size", 4096, positive_int, "host"),
    Setting("run.memory_gb", 4.0, positive_number("a positive number of gigabytes"), "host"),
    # a model whose loss is no longer finite: "keep" records it (diverged = True, loss NaN in
    # models.parquet) and trains the rest, as a sweep reaching into too high a train.lr wants;
    # "stop" ends the run at the first chunk holding one (finished chunks are kept). Host-only:
    # neither changes any other model's result.
    Setting("run.on_diverge", "keep", one_of(ON_DIVERGE), "host",
            doc="what a diverged model does to the run: keep it and go on, or stop"),
    # rounds of restarts of every local-minimum cell from the neighbour's solution that beat it,
    # after the sweep is stored (toysuper/polish.py); 0: the results as trained
    Setting("run.polish", 0, nonneg_int, "host",
            doc="polish rounds: local-minimum cells restarted from the solutions that beat them"),
    # [attack]: the worst input perturbation of each trained model, read only by the derived
    # table `adversarial` (toysuper/adversarial.py). Role "model" without a field: stored in
    # models.parquet, never in train.Shape or train.Hyper and never in a key (salt None), so
    # they change neither how a model trains nor which programs train it. Not sweepable
    # (config.validate): every model is attacked at every radius of attack.eps.
    Setting("attack.eps", [0.1], relative_radii, "model",
            doc="radii ||d|| / ||x|| of the attack, one table row per model and radius"),
    Setting("attack.pgd_steps", 100, positive_int, "model",
            doc="projected gradient ascent steps from each start"),
    Setting("attack.restarts", 8, positive_int, "model",
            doc="starts per input: d = 0, then random points of the sphere"),
    Setting("attack.inputs", 1024, positive_int, "model",
            doc="inputs with an active feature attacked per model, from its evaluation sample"),
)
BY_KEY = {s.key: s for s in TABLE}
# Settings that choose among training runs of one task rather than define a task: a sweep cell
# is every swept setting but these, and keeps its lowest-loss run (optima.kept_models).
RESTARTS = ("train.seed", "train.init_from", "train.init_noise")
SECTIONS = tuple(dict.fromkeys(s.key.split(".")[0] for s in TABLE))
# `data.importance[i]` / `data.density[i]` set one feature's value after the vector is built.
FEATURE_KEY = re.compile(r"^data\.(importance|density)\[(-?\d+)\]$")
SHAPE_FIELDS = {s.field: s.key for s in TABLE if s.role == "shape"}   # Shape attribute -> key
HYPER_SCALARS = {s.field: s.key for s in TABLE if s.role == "model" and s.field}  # Hyper ones


# --- SAE experiments (an [sae] section): sparse autoencoders trained on a source's activations
SOURCES = ("synthetic", "model")
SAE_INITS = ("random", "features")


def hierarchy(key, v, settings):
    """[[parent, child, ...], ...]: each child fires only when its parent does (data.py)."""
    n = n_features(settings)
    shape_ok = isinstance(v, list) and all(
        isinstance(g, list) and len(g) >= 2 and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in g) for g in v)
    if not shape_ok:
        raise ConfigError(f"{key} = {v!r} must be a list of groups [parent, child, ...] of feature "
                          f"indices in 0..{n - 1}, e.g. [[0, 1, 2]] (features 1 and 2 fire only "
                          f"with feature 0)")
    children = [i for g in v for i in g[1:]]
    parents = [g[0] for g in v]
    twice = sorted({i for i in children if children.count(i) > 1} | (set(parents) & set(children))
                   | {i for i in parents if parents.count(i) > 1})
    if twice:
        raise ConfigError(f"{key} = {v!r}: feature(s) {twice} appear in more than one place; a "
                          f"feature is at most one group's parent or one group's child")


def check_hierarchy(hierarchy, p, sets=()) -> None:
    """A hierarchy against the features' densities p and sets: a child at most as dense as its
    parent (it fires only with it), no feature both in a group and in a set."""
    in_sets = {i for g in sets for i in g}
    for group in hierarchy:
        parent, children = group[0], group[1:]
        if in_sets & set(group):
            raise ConfigError(f"data.hierarchy group {group} shares feature(s) "
                              f"{sorted(in_sets & set(group))} with a correlated or anticorrelated "
                              f"set; a feature may be in one of them only")
        for c in children:
            if p[c] > p[parent] + 1e-12:
                raise ConfigError(f"data.hierarchy {group}: child {c} has density {p[c]:g} above "
                                  f"its parent {parent}'s {p[parent]:g}; a child fires only with "
                                  f"its parent, so its density must be at most the parent's")


def results_dir(key, v, settings=None):
    if not isinstance(v, str) or (v and not (Path(v) / "config.toml").is_file()):
        raise ConfigError(f"{key} = {v!r} must be a results directory (one with config.toml), "
                          f"as `toysuper run` writes")


SAE_TABLE = (
    # [source]: where the activations come from (toysuper/sources.py)
    Setting("source.kind", "synthetic", one_of(SOURCES), "shape", "source",
            doc="'synthetic': n random unit directions in m dimensions; 'model': the hidden "
                "states h = W x of a stored toy model"),
    Setting("source.n_features", 256, positive_int, "shape", "n",
            doc="n true features (synthetic; a stored model brings its own)"),
    Setting("source.n_hidden", 64, positive_int, "shape", "m",
            doc="m, the activations' dimension (synthetic; a stored model brings its own)"),
    Setting("source.seed", 0, nonneg_int, "model", doc="the synthetic dictionary's seed"),
    Setting("source.results", "", results_dir, "model", doc="the stored model's results directory"),
    Setting("source.model", 0, nonneg_int, "model", doc="the stored model's id (sweepable)"),
    # [data]: the features' law (a stored model brings its own)
    BY_KEY["data.law"],
    BY_KEY["data.density"]._replace(default=0.02),
    BY_KEY["data.correlated"],
    BY_KEY["data.anticorrelated"],
    Setting("data.hierarchy", [], hierarchy, "model",
            doc="groups [parent, child, ...]: a child fires only with its parent, each at its density"),
    # [sae]
    Setting("sae.kind", "topk", one_of("toysuper.saes:KIND"), "shape", "kind", doc="toysuper/saes.py"),
    Setting("sae.width", 256, positive_int, "shape", "d", doc="d_sae, the number of latents"),
    Setting("sae.k", 5, positive_int, "shape", "k", doc="latents per example (topk, batchtopk, matryoshka)"),
    Setting("sae.l1_coefficient", 1.0, nonneg_number, "model", "l1", doc="L1 coefficient (relu_l1)"),
    Setting("sae.l0_coefficient", 0.01, nonneg_number, "model", "l0", doc="L0 coefficient (jumprelu)"),
    Setting("sae.threshold", 0.05, positive_number("a positive number"), "model", "threshold",
            doc="jumprelu's initial threshold"),
    Setting("sae.bandwidth", 0.01, positive_number("a positive number"), "model", "bandwidth",
            doc="jumprelu's straight-through rectangle width"),
    # "features": the decoder's first min(d, n) latents start at the true feature directions
    # (the encoder at their transpose), to test whether the true features are an optimum
    Setting("sae.init", "random", one_of(SAE_INITS), "shape", "init",
            doc="'random' unit directions, or 'features': the true ones"),
    # latents that fired on none of the last `resample_every` steps' examples restart along the
    # worst-reconstructed example of the batch (0: never)
    Setting("sae.resample_every", 0, nonneg_int, "shape", "resample",
            doc="steps between restarts of dead latents (0: never)"),
    # AuxK (Gao et al. 2024, appendix A.2): the top aux_k of the dead latents (silent for
    # aux_dead steps) reconstruct the main reconstruction's error, weighted aux_coefficient, so
    # dead latents get a gradient toward what the live ones miss (0: off, as results before it)
    Setting("sae.aux_k", 0, nonneg_int, "shape", "aux_k",
            doc="dead latents in the auxiliary reconstruction (0: no AuxK loss)"),
    Setting("sae.aux_dead", 100, positive_int, "shape", "aux_dead",
            doc="steps without firing after which a latent counts as dead for AuxK"),
    Setting("sae.aux_coefficient", 1 / 32, nonneg_number, "model", "aux",
            doc="weight of the AuxK loss (Gao et al.: 1/32)"),
    # initial decoder column norm: 1 (unit columns, the lab's) or e.g. 0.1 (SAELens's default),
    # the encoder starting as the decoder's transpose either way
    Setting("sae.init_norm", 1.0, positive_number("a positive number"), "model", "init_norm",
            doc="norm of each decoder column at initialisation"),
    # gradients clipped to this global norm before Adam (0: no clipping, as results before it)
    Setting("sae.grad_clip", 0.0, nonneg_number, "shape", "grad_clip",
            doc="global gradient norm clip (0: off)"),
    # [train]
    BY_KEY["train.steps"],
    BY_KEY["train.batch"],
    BY_KEY["train.lr"]._replace(default=3e-4),
    BY_KEY["train.schedule"],
    BY_KEY["train.warmup"],
    BY_KEY["train.log_every"],
    BY_KEY["train.eval_batch"]._replace(default=16_384),
    BY_KEY["train.seed"],
    BY_KEY["run.chunk_size"],
    BY_KEY["run.memory_gb"],
    BY_KEY["run.on_diverge"],
)
SAE_SHAPE_FIELDS = {s.field: s.key for s in SAE_TABLE if s.role == "shape"}
SAE_HYPER_SCALARS = {s.field: s.key for s in SAE_TABLE if s.role == "model" and s.field}


def table(family: str = "toys") -> tuple:
    """A family's settings (family.py: each family declares its own)."""
    return family_mod.get(family).settings


def _every() -> dict:
    """Every family's settings by key; a key's check is the same in every family."""
    out = {}
    for f in reversed(family_mod.every()):  # the first registered (toy models) wins a key
        out.update({s.key: s for s in f.settings})
    return out


def defaults(family: str = "toys") -> dict:
    """{section: {name: default}} of one family's settings, a fresh copy."""
    out = {section: {} for section in sections(family)}
    for s in table(family):
        section, name = s.key.split(".", 1)
        out[section][name] = copy.deepcopy(s.default)
    return out


def sections(family: str = "toys") -> tuple:
    return tuple(dict.fromkeys(s.key.split(".")[0] for s in table(family)))


def family(cfg: dict) -> str:
    """The name of an experiment's family (a raw file or a resolved config): family.name_of."""
    return family_mod.name_of(cfg)


def _feature_key(key: str, family: str) -> bool:
    """A per-feature override (data.density[3]) of a vector setting the family has."""
    m = FEATURE_KEY.match(key)
    return bool(m) and any(s.key == f"data.{m.group(1)}" for s in table(family))


def known(key: str, family: str = "toys") -> bool:
    return any(s.key == key for s in table(family)) or _feature_key(key, family)


def check_key(key: str, family: str = "toys") -> str:
    if known(key, family):
        return key
    section = key.split(".")[0]
    settings = table(family)
    if section in sections(family):
        allowed = ", ".join(s.key for s in settings if s.key.startswith(section + "."))
        allowed += "".join(f", {s.key}[i]" for s in settings if s.key.startswith(section + ".")
                           and s.key in ("data.importance", "data.density"))
    else:
        allowed = ", ".join(s.key for s in settings)
    raise ConfigError(f"unknown key '{key}' for {family_mod.get(family).described}; known "
                      f"keys: {allowed}")


def check_value(key: str, v, settings: dict) -> None:
    """Validate one setting's value; `settings` supplies n_features for vector checks."""
    every = _every()
    if key in every:
        every[key].check(key, v, settings)
    elif m := FEATURE_KEY.match(key):
        n = n_features(settings)
        i = int(m.group(2))
        if not -n <= i < n:
            raise ConfigError(f"{key}: feature index {i} is out of range for n_features = {n}")
        _check_scalar(key, m.group(1), v)


def salted(key: str, value) -> bool:
    """Whether a model's setting enters its key salt (see Setting.salt)."""
    if FEATURE_KEY.match(key):
        return True
    s = BY_KEY.get(key)
    return s is not None and (s.salt == "always" or (s.salt == "when_set" and value != s.default))


def column(key: str) -> str:
    """Table column of a setting: its name without the section ('data.density' -> 'density')."""
    return key.split(".", 1)[1]


def _check_scalar(key, kind, v):
    if kind == "density":
        if not _is_number(v) or not 0 < v <= 1:
            raise ConfigError(f"{key} = {v!r}: a density must lie in (0, 1]")
    elif not _is_number(v) or v < 0 or not math.isfinite(v):
        raise ConfigError(f"{key} = {v!r}: an importance must be a finite number >= 0")


def feature_vector(key: str, spec, n: int) -> np.ndarray:
    """Build the n-vector of data.density or data.importance from its spec.

    A number (every feature), a list of n numbers, for importance {decay = r} (I_i = r^i)
    or {ratio = k} (I = k^-linspace(0, 1, n)), for density {power = alpha} or {power = alpha,
    active = E}: p_i proportional to i^-(1 + alpha) (i = 1..n), scaled so that E features are
    active on average (sum p_i = E, default 1, as in Liu, Liu & Gore 2025).
    """
    kind = key.split(".")[1]
    if _is_number(spec):
        vec = np.full(n, float(spec))
    elif isinstance(spec, list):
        if len(spec) != n:
            raise ConfigError(f"{key} has {len(spec)} values but model.n_features = {n}")
        vec = np.array(spec, dtype=float) if all(_is_number(v) for v in spec) else None
        if vec is None:
            raise ConfigError(f"{key} = {spec!r} must hold numbers only")
    elif kind == "importance" and isinstance(spec, dict) and len(spec) == 1 and (
            "decay" in spec or "ratio" in spec):
        (form, r), = spec.items()
        if not _is_number(r) or r <= 0:
            raise ConfigError(f"{key}: {form} = {r!r} must be a positive number")
        vec = r ** np.arange(n, dtype=float) if form == "decay" else float(r) ** -np.linspace(0, 1, n)
    elif kind == "density" and isinstance(spec, dict) and "power" in spec and set(spec) <= {
            "power", "active"}:
        alpha, active = spec["power"], spec.get("active", 1.0)
        if not _is_number(alpha) or alpha < 0 or not _is_number(active) or active <= 0:
            raise ConfigError(f"{key} = {spec!r}: power = alpha must be a number >= 0 and "
                              f"active = E a positive number")
        vec = np.arange(1, n + 1, dtype=float) ** -(1.0 + alpha)
        vec *= active / vec.sum()
        if vec[0] > 1:
            raise ConfigError(f"{key} = {spec!r} makes feature 0's density {vec[0]:.3g} > 1; "
                              f"lower active (at most {active / vec[0]:.3g} here)")
    else:
        forms = "a number, a list of n_features numbers"
        forms += (", {decay = r} or {ratio = k}" if kind == "importance"
                  else ", {power = alpha} or {power = alpha, active = E}")
        raise ConfigError(f"{key} = {spec!r} must be {forms}")
    for v in vec:
        _check_scalar(key, kind, float(v))
    return vec


def feature_vectors(settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """(importance, density) n-vectors of one model, feature overrides applied."""
    n = settings["model.n_features"]
    vecs = {k: feature_vector(f"data.{k}", settings[f"data.{k}"], n) for k in ("importance", "density")}
    for key, value in settings.items():
        if m := FEATURE_KEY.match(key):
            vecs[m.group(1)][int(m.group(2))] = float(value)
    return vecs["importance"], vecs["density"]
