"""What an experiment makes besides its core tables: derived tables and figures.

An experiment names them in `figures = [...]` and `tables = [...]`; a figure's own tables come
with it. `check` reads the names and every figure's and table's needs against the sweep's
settings, so a sweep that cannot be drawn is refused before it trains.
"""

from __future__ import annotations

from pathlib import Path

from toysuper import claims, family, figures, needs, tables
from toysuper import progress as progress_mod
from toysuper.errors import ConfigError


def _known(cfg: dict, key: str, registry: dict) -> list[str]:
    for name in cfg.get(key, []):
        if name not in registry:
            raise ConfigError(f"{key}: unknown name '{name}'; known: {', '.join(registry)}")
    return list(cfg.get(key, []))


def figure_names(cfg: dict) -> list[str]:
    names = _known(cfg, "figures", figures.FIGURES)
    fam = family.of(cfg)
    for name in names:
        if figures.FIGURES[name].family != fam.name:
            mine = [f for f, fig in figures.FIGURES.items() if fig.family == fam.name]
            what = fam.described
            raise ConfigError(f"figures: '{name}' draws {figures.FIGURES[name].family} results, "
                              f"not {what}; its figures are: {', '.join(mine)}")
    return names


# made for every run of every family: the experiment's claims measured on it (toysuper/claims.py)
EVERY = ("claims",)


def table_names(cfg: dict, figure_list=None) -> list[str]:
    """The tables every run makes, the experiment's own and those its figures read, each once."""
    # each family's own first (toy models: optima and neighbours, whether each beats its
    # trivial baselines and neighbours' solutions; SAEs: sae_optima)
    own = list(family.of(cfg).always) + _known(cfg, "tables", tables.DERIVED)
    used = [t for f in (figure_names(cfg) if figure_list is None else figure_list)
            for t in figures.FIGURES[f].tables]
    # claims last: they read the other tables, which are made afresh first
    return [t for t in dict.fromkeys(own + used) if t not in EVERY] + list(EVERY)


def check(cfg: dict, sweep: list[dict]) -> None:
    """Raise ConfigError if a figure, table or claim is unknown or the sweep cannot satisfy its needs."""
    claims.validate(cfg.get("claims", []))
    for name in figure_names(cfg):
        needs.check(figures.FIGURES[name].needs, sweep, f"figure '{name}'")
    fam = family.of(cfg)
    for name in _known(cfg, "tables", tables.DERIVED):
        if tables.DERIVED[name].family not in (fam.name, "any"):
            mine = [t for t, table in tables.DERIVED.items() if table.family in (fam.name, "any")]
            what = fam.described
            raise ConfigError(f"tables: '{name}' reads {tables.DERIVED[name].family} results, not "
                              f"{what}; its tables are: {', '.join(mine)}")
    for name in table_names(cfg):
        needs.check(tables.DERIVED[name].needs, sweep, f"table '{name}'")


def make(res, figure_list=None, progress=True) -> list[Path]:
    """Compute the tables (written beside the results when they have a path) and draw the
    figures, under one progress bar (toysuper/progress.py)."""
    figure_list = figure_names(res.config) if figure_list is None else figure_list
    names, drawn = table_names(res.config, figure_list), figure_list if res.path else []
    with progress_mod.bar(len(names) + len(drawn), "tables and figures", progress) as bar:
        made = tables.derive(res, names, each=progress_mod.ticker(bar))
        if res.path is None:
            return []
        tables.write(made, Path(res.path))
        return figures.draw(res, figure_list, Path(res.path) / "figures", progress_mod.ticker(bar))
