"""`toysuper report`: a static HTML site of a folder of results directories.

The site is meant to be opened from a file:// URL on a machine without network, or copied
elsewhere whole, so it holds everything it shows: figures, tables and plotly.js are copied into
it and every link is relative. Layout of OUT:
  index.html          one entry per results directory: description, models, runtime, trapped
                      models, local minima, diverged models, its claims' verdicts; and the
                      reproduction scoreboard: every claim as measured (claims.parquet)
  plotly.min.js       written once, for the interactive views of every page
  NAME/index.html     one page per results directory: interactive view, figures, its claims
                      as measured, experiment file's opening comment, declared traps, config,
                      first rows of each table
  NAME/figures/*.png  copies of DIR/figures
  NAME/data/          copies of DIR's tables (*.parquet), config.toml and summary.json
  .toysuper-report    marks OUT as a report, which a later report may replace whole
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import time
import tomllib
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline
from plotly.subplots import make_subplots

from toysuper import config, experiments, family, settings, store, upgrade
from toysuper import progress as progress_mod
from toysuper.errors import ConfigError

MARKER = ".toysuper-report"
PLOTLY_JS = "plotly.min.js"
ROWS = 20  # table rows shown per table; the whole table is one link away
PLANES_MOST = 36  # more kept models than this would make the feature-plane view a wall of dots
PHASE_COLOURS = {"not represented": "#e6e6e6", "dedicated": "#2b59d9", "superposition": "#d62424"}

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em;
       color: #1d1d1d; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
a { color: #1f5bb5; }
.lead { color: #555; margin-top: 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; margin: 0.8em 0; }
.card h2 { margin: 0.1em 0; border: none; font-size: 1.25em; }
.facts { list-style: none; padding: 0; margin: 0.4em 0; display: flex; flex-wrap: wrap; gap: 0.4em 1.4em; }
.facts b { font-weight: 600; }
.bad { color: #b00020; }
.measured { color: #333; font-size: 0.93em; margin: 0.4em 0; }
pre { background: #f6f6f6; padding: 0.7em; overflow-x: auto; font-size: 0.85em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; }
table.wrap td { white-space: normal; text-align: left; min-width: 5em; max-width: 32em; }
"""


def build(results, out, progress=True) -> tuple[Path, list[str]]:
    """Write the site of `results` (a folder of results directories, or one) into `out`.

    Returns the index page and one line per results directory left out (unfinished or
    unreadable), which the index lists too. Bad input is a one-line ConfigError. `progress`:
    a bar over the directories (toysuper/progress.py).
    """
    results, out = Path(results), Path(out)
    finished, unfinished, outside = _results_dirs(results)
    _check_out(out, results)
    work = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        entries, skipped = [], [f"{p.name}: unfinished (no summary.json)" for p in unfinished]
        skipped += [f"{p.name}: a link out of '{results}', not read" for p in outside]
        bar = progress_mod.bar(len(finished), "report", progress, unit=" results")
        for path in finished:
            bar.set_postfix_str(path.name)
            try:
                entry = _entry(path)
                _write_experiment(work / entry["slug"], entry)
            except Exception as err:  # one bad directory should not hide the others
                shutil.rmtree(work / path.name, ignore_errors=True)
                why = err if isinstance(err, ConfigError) else (
                    f"unreadable ({type(err).__name__}: {_first_line(err)})")
                skipped.append(f"{path.name}: {_first_line(why)}")
                continue
            finally:
                bar.update()
            entries.append(entry)
            if entry["left_out"]:
                skipped.append(f"{path.name}: left out {len(entry['left_out'])} file(s) that are "
                               f"not plain files of the folder (links out of it): "
                               f"{', '.join(entry['left_out'])}")
        bar.close()
        if not entries:
            raise ConfigError(f"no results directory in '{results}' could be read: "
                              f"{'; '.join(skipped)}")
        if any(e["views"] for e in entries):
            (work / PLOTLY_JS).write_text(plotly.offline.get_plotlyjs(), encoding="utf-8")
        (work / "index.html").write_text(_index(results, entries, skipped), encoding="utf-8")
        (work / MARKER).write_text("written by toysuper report; replaced whole by the next one\n")
        if out.exists():
            shutil.rmtree(out)  # a previous report (_check_out): no page of it outlives this one
        os.replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out / "index.html", skipped


def _results_dirs(folder: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(finished, unfinished, outside) results directories: `folder` itself if it is one, else
    its subdirectories holding a config.toml (summary.json marks a finished run, store.py);
    `outside`: subdirectories that are links out of `folder`, never read."""
    if not folder.exists():
        raise ConfigError(f"results folder '{folder}' does not exist")
    if not folder.is_dir():
        raise ConfigError(f"'{folder}' is a file; give a folder of results directories "
                          f"(such as results/) or one results directory")
    if (folder / "config.toml").exists():
        dirs, outside = [folder], []
    else:
        found = sorted(p for p in folder.iterdir() if p.is_dir() and (p / "config.toml").exists())
        outside = [p for p in found if not p.resolve().is_relative_to(folder.resolve())]
        dirs = [p for p in found if p not in outside]
    finished = [p for p in dirs if store.inside(p / "summary.json", p)]
    if not finished:
        more = (f" (only unfinished runs, without summary.json: {', '.join(p.name for p in dirs)})"
                if dirs else "")
        raise ConfigError(f"no finished results directory (config.toml and summary.json) in "
                          f"'{folder}'{more}; `toysuper run` writes them")
    return finished, [p for p in dirs if p not in finished], outside


def _check_out(out: Path, results: Path) -> None:
    """Refuse an output folder that holds anything but an earlier report: it is replaced whole."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; give a folder for the report")
    if results.resolve().is_relative_to(out.resolve()):
        raise ConfigError(f"--out '{out}' holds the results folder '{results}'; "
                          f"write the report elsewhere")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ConfigError(f"--out '{out}' exists and is not a toysuper report (no {MARKER}); "
                          f"choose another --out or remove it")


# ---------------------------------------------------------------- reading one results directory

def _entry(path: Path) -> dict:
    """What the index and the page show of one results directory."""
    res = store.load(path)
    name = str(res.config.get("name") or path.name)
    file = _experiment_file(name) or _experiment_file(path.name)
    text = file.read_text(encoding="utf-8", errors="replace") if file else ""
    comment = opening_comment(text)
    try:
        traps = tomllib.loads(text).get("traps", "") if file else ""
    except tomllib.TOMLDecodeError:
        traps = ""
    # the experiment file is edited without retraining (test_committed_results.py reads it first)
    traps = str(traps or res.config.get("traps", "") or "")
    try:
        summary = json.loads((path / "summary.json").read_text()) if store.inside(
            path / "summary.json", path) else {}
    except (OSError, ValueError):
        summary = {}
    summary = summary if isinstance(summary, dict) else {}
    claims = res.derived.get("claims")  # measured on this run (claims.parquet), never the prose
    fam = family.of(res.config)
    tables = {**{name: getattr(res, name) for name in fam.tables}, **res.derived}
    # the family's own facts, kept models and interactive views (family.Page), else the common ones
    page = fam.page(res, summary, traps) if fam.page else Page(facts(res, summary, traps))
    return {"slug": path.name, "path": path, "name": name, "res": res, "file": file,
            "comment": comment, "claims": claims, "traps": traps, "summary": summary,
            "tables": tables, "kept": page.kept, "views": page.views, "facts": page.facts}


class Page(NamedTuple):
    """What a family shows of one results directory on its page and in the index."""
    facts: list            # (label, value, alarming)
    kept: list = []        # member ids the figures show (toy models: one per sweep cell)
    views: list = []       # interactive views (HTML)


def runtime(summary: dict) -> str:
    """How long the run trained, from summary.json."""
    seconds = summary.get("seconds")
    out = _duration(seconds) if isinstance(seconds, (int, float)) else "unknown"
    trained, chunks = summary.get("trained_chunks"), summary.get("chunks")
    if isinstance(trained, int) and isinstance(chunks, int) and trained < chunks and (
            "last_run_seconds" not in summary):
        # an older summary.json times the last run only: chunks finished before it were read
        # from parts/ (a newer one sums every run's training, store.training_seconds)
        out += f" (the last run trained {trained} of {chunks} chunks, the rest were resumed)"
    return out


def facts(res, summary: dict, traps: str) -> list[tuple[str, str, bool]]:
    """(label, value, alarming) that every family has: members, runtime, diverged, traps."""
    fam = family.of(res.config)
    rows = family.members(res)
    diverged = int(rows["diverged"].sum()) if "diverged" in rows else 0
    return [(fam.noun, f"{len(rows):,}", False), ("runtime", runtime(summary), False),
            ("diverged", f"{diverged:,}", diverged > 0),
            ("traps declared", "yes" if traps else "no", False)]


def _experiment_file(name: str) -> Path | None:
    # only experiments/NAME.toml: experiments.find would take a same-named folder in the cwd
    for folder in experiments.dirs():
        if (folder / f"{name}.toml").is_file():
            return folder / f"{name}.toml"
    return None


def opening_comment(text: str) -> list[str]:
    """The leading `#` lines of an experiment file, without the `#`."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:] if line.startswith("# ") else line[1:])
    return lines


def _first_line(e) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def planar(res, kept: list[int]) -> bool:
    """Whether every kept model embeds its features in a plane, few enough to draw each."""
    if not 0 < len(kept) <= PLANES_MOST:
        return False
    return bool((res.models.set_index("model").loc[kept, "n_hidden"] == 2).all())


def _cell(res, model: int) -> str:
    """A kept model's sweep cell in words: its swept settings but the restarts."""
    row = res.models.set_index("model").loc[model]
    keys = [k for k in res.config.get("sweep", {}) if k not in settings.RESTARTS]
    columns = ["case" if k == config.CASES else settings.column(k) for k in keys]
    return ", ".join(f"{c} {_value(row[c])}" for c in columns if c in row) or f"model {model}"


# ----------------------------------------------------------------------------- interactive views

def phase_view(phase: pd.DataFrame) -> str:
    """Heatmap of the kept model's phase per (p, r) cell, rings where the theory differs; hover
    names the cell's kept model, loss, phase, theory and seed share."""
    # a label phase.py may gain later is drawn in grey rather than refused
    names = list(PHASE_COLOURS) + sorted(set(phase["phase"]) - PHASE_COLOURS.keys())
    cells = phase.assign(code=phase["phase"].map(names.index), x=np.log10(phase["r"]),
                         y=np.log10(phase["p"]))
    # one row per p, one column per r: the sweep is a grid (missing cells stay empty)
    z = cells.pivot_table(index="y", columns="x", values="code", aggfunc="first")
    fields = ["p", "r", "model", "loss", "phase", "theory_phase", "seed_share"]
    lookup = cells.set_index(["y", "x"])[fields]
    custom = [[_hover_fields(lookup, y, x, fields) for x in z.columns] for y in z.index]
    n = len(names)
    scale = [c for i, name in enumerate(names)
             for c in ([i / n, PHASE_COLOURS.get(name, "#999")],
                       [(i + 1) / n, PHASE_COLOURS.get(name, "#999")])]
    fig = go.Figure(go.Heatmap(
        x=z.columns, y=z.index, z=z.values, customdata=custom, zmin=-0.5, zmax=n - 0.5,
        colorscale=scale, xgap=1, ygap=1,
        colorbar=dict(tickvals=list(range(n)), ticktext=names, title="kept model's phase"),
        hovertemplate=("p = %{customdata[0]}<br>r = %{customdata[1]}<br>kept model "
                       "%{customdata[2]}<br>loss %{customdata[3]}<br>phase: %{customdata[4]}"
                       "<br>theory: %{customdata[5]}<br>seed share %{customdata[6]}<extra></extra>")))
    differ = cells[cells["phase"] != cells["theory_phase"]]
    fig.add_trace(go.Scatter(x=differ["x"], y=differ["y"], mode="markers", hoverinfo="skip",
                             name="unlike the theory", marker=dict(symbol="circle-open",
                                                                  color="black", size=7)))
    fig.update_layout(
        height=560, margin=dict(l=70, r=20, t=40, b=60), plot_bgcolor="white",
        legend=dict(orientation="h", y=1.06, x=0), hovermode="closest",
        xaxis=dict(title="relative importance r of the extra feature", **_log_ticks([0.1, 0.3, 1, 3, 10])),
        yaxis=dict(title="feature density p = 1-S", **_log_ticks([0.01, 0.03, 0.1, 0.3, 1])))
    return _view("phase-view", "Phase per sweep cell",
                 f"The kept (lowest-loss) model's phase in each of {len(cells):,} cells, ringed "
                 f"where the analytic theory says otherwise ({len(differ):,} cells); hover a "
                 f"cell for its model, loss, phase, theory and seed share.", fig)


def _log_ticks(values) -> dict:
    # the heatmap is drawn in log10 coordinates (cells of equal size); ticks name the values
    return dict(tickvals=np.log10(values).tolist(), ticktext=[f"{v:g}" for v in values])


def _hover_fields(lookup, y, x, fields) -> list[str]:
    if (y, x) not in lookup.index:
        return [""] * len(fields)
    row = lookup.loc[(y, x)]
    if isinstance(row, pd.DataFrame):  # two cells at one (p, r): the sweep had another axis
        row = row.iloc[0]
    return [html.escape(_value(row[f]) if f != "seed_share" else f"{row[f]:.0%}") for f in fields]


def plane_view(res, kept: list[int]) -> str:
    """One small plane per kept model: each feature's column W_i of the 2 x n embedding, with
    hover naming the feature, its norm and its dimensionality D_i."""
    cols = math.ceil(math.sqrt(len(kept)))
    rows = math.ceil(len(kept) / cols)
    titles = [html.escape(f"{_cell(res, m)} (model {m})") for m in kept]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles,
                        horizontal_spacing=0.04, vertical_spacing=0.3 / rows)
    features = res.features.set_index(["model", "feature"])
    Ws = {m: res.W(m) for m in kept}
    reach = 1.15 * max((float(np.abs(W).max()) for W in Ws.values()), default=1.0) or 1.0
    for k, m in enumerate(kept):
        W = Ws[m]
        n = W.shape[1]
        spokes = dict(x=[v for i in range(n) for v in (0.0, W[0, i], None)],
                      y=[v for i in range(n) for v in (0.0, W[1, i], None)])
        custom = [[i, f"{features.loc[(m, i), 'norm']:.3f}",
                   f"{features.loc[(m, i), 'dimensionality']:.3f}"] for i in range(n)]
        where = dict(row=k // cols + 1, col=k % cols + 1)
        fig.add_trace(go.Scatter(**spokes, mode="lines", hoverinfo="skip",
                                 line=dict(color="#999", width=1)), **where)
        fig.add_trace(go.Scatter(
            x=W[0], y=W[1], mode="markers", customdata=custom,
            marker=dict(size=9, color=list(range(n)), colorscale="Turbo", cmin=0, cmax=max(n - 1, 1)),
            hovertemplate=(f"model {m}<br>feature %{{customdata[0]}}<br>||W_i|| = %{{customdata[1]}}"
                           f"<br>D_i = %{{customdata[2]}}<extra></extra>")), **where)
    fig.update_xaxes(range=[-reach, reach], zeroline=True, showticklabels=False, showgrid=False)
    fig.update_yaxes(range=[-reach, reach], zeroline=True, showticklabels=False, showgrid=False)
    for k in range(1, len(kept) + 1):  # square planes: a unit of x as long as one of y
        fig.update_layout({f"yaxis{'' if k == 1 else k}": dict(scaleanchor=f"x{'' if k == 1 else k}")})
    fig.update_layout(height=260 * rows + 40, showlegend=False, hovermode="closest",
                      margin=dict(l=20, r=20, t=50, b=20), plot_bgcolor="white")
    fig.update_annotations(font_size=11)
    return _view("plane-view", "Feature vectors of the kept models",
                 f"Each feature's column W_i of the 2 x n embedding, for the kept (lowest-loss) "
                 f"model of each of {len(kept)} sweep cells; colour is the feature's index. "
                 f"Hover a point for its norm ||W_i|| and dimensionality D_i.", fig)


def _view(div_id: str, title: str, caption: str, fig) -> str:
    # plotly.js is loaded once per page from the site's root (_page), not embedded per figure
    plot = pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})
    return f"<h2>{html.escape(title)}</h2>\n<p>{html.escape(caption)}</p>\n{plot}"


# ------------------------------------------------------------------------------------- writing

def _write_experiment(folder: Path, e: dict) -> None:
    """The page of one results directory, with copies of its own plain files only
    (store.inside): a link out of it is left out and listed in e["left_out"]."""
    src = e["path"]
    (folder / "figures").mkdir(parents=True)
    (folder / "data").mkdir()
    found = sorted((src / "figures").glob("*.png"))
    figures = [p for p in found if store.inside(p, src)]
    candidates = ["config.toml", "summary.json"] + [f.name for f in sorted(src.glob("*.parquet"))]
    files = [name for name in candidates if store.inside(src / name, src)]
    e["left_out"] = [f"figures/{p.name}" for p in found if p not in figures] + [
        name for name in candidates if name not in files]
    for png in figures:
        shutil.copyfile(png, folder / "figures" / png.name)
    for name in files:
        shutil.copyfile(src / name, folder / "data" / name)
    (folder / "index.html").write_text(_experiment_page(e, figures, files), encoding="utf-8")


def _experiment_page(e: dict, figures: list[Path], files: list[str]) -> str:
    esc = html.escape
    description = e["res"].config.get("description", "")
    parts = ['<p><a href="../index.html">&larr; all experiments</a></p>',
             f"<h1>{esc(e['slug'])}</h1>",
             f"<p>experiment <code>{esc(e['name'])}</code></p>" if e["name"] != e["slug"] else "",
             f'<p class="lead">{esc(description)}</p>' if description else "",
             _facts_html(e["facts"])]
    parts += e["views"]
    if figures:
        parts.append("<h2>Figures</h2>")
        # a wide figure (one panel per cell) is shrunk to the page: its link opens it full size
        parts += [f'<figure><a href="figures/{quote(p.name)}"><img src="figures/{quote(p.name)}" '
                  f'alt="{esc(p.stem)}"></a><figcaption>{esc(p.name)} (click for full size)'
                  f"</figcaption></figure>" for p in figures]
    parts.append("<h2>Claims measured on this run</h2>")
    parts.append(_claims_html(e["claims"]))
    parts.append("<h2>Experiment file</h2>")
    if not e["file"]:
        parts.append(f"<p>No experiment file {esc(e['name'])}.toml was found.</p>")
    elif not e["comment"]:
        parts.append(f"<p><code>experiments/{esc(e['file'].name)}</code> opens with no comment.</p>")
    else:
        parts.append(f"<p>The opening comment of <code>experiments/{esc(e['file'].name)}</code> "
                     f"(as the file is now: the results may predate edits to it):</p>"
                     f"<pre>{esc(chr(10).join(e['comment']))}</pre>")
    parts.append("<h2>Declared traps</h2>")
    parts.append(f"<pre>{esc(e['traps'])}</pre>" if e["traps"] else
                 "<p>None: the experiment declares no trapped models or local minima.</p>")
    resolved = (e["path"] / "config.toml").read_text(encoding="utf-8", errors="replace")
    parts.append(f'<h2>Resolved config</h2><p><a href="data/config.toml">config.toml</a> · '
                 f'<a href="data/summary.json">summary.json</a></p><pre>{esc(resolved)}</pre>')
    parts.append("<h2>Tables</h2>")
    for name, df in e["tables"].items():
        file = f"{name}.parquet"
        link = (f' <a href="data/{quote(file)}">{esc(file)}</a>' if file in files
                else " (computed when read, not stored)")
        shown = min(ROWS, len(df))
        parts.append(f'<h3 id="{esc(name)}">{esc(name)}</h3><p>{len(df):,} rows, '
                     f"{len(df.columns)} columns; the first {shown}.{link}</p>"
                     f'<div class="scroll">{table_html(df.head(ROWS))}</div>')
    return _page(e["slug"], "\n".join(parts), root="../", plotly=bool(e["views"]))


def _index(results: Path, entries: list[dict], skipped: list[str]) -> str:
    esc = html.escape
    total = sum(len(family.members(e["res"])) for e in entries)
    parts = ["<h1>toysuper results</h1>",
             f'<p class="lead">{len(entries)} experiments, {total:,} models, from '
             f"<code>{esc(str(results))}</code>; written {esc(time.strftime('%Y-%m-%d %H:%M'))} "
             f"by toysuper {esc(upgrade.VERSION)}.</p>"]
    for e in entries:
        description = e["res"].config.get("description", "")
        parts.append(f'<div class="card"><h2><a href="{quote(e["slug"])}/index.html">'
                     f"{esc(e['slug'])}</a></h2>"
                     + (f"<div>{esc(description)}</div>" if description else "")
                     + _facts_html(e["facts"])
                     + f'<p class="measured">{esc(claims_line(e["claims"]))}</p>'
                     + "</div>")
    parts.append(scoreboard(entries))
    if skipped:
        parts.append("<h2>Not included</h2><ul>"
                     + "".join(f"<li>{esc(s)}</li>" for s in skipped) + "</ul>")
    return _page("toysuper results", "\n".join(parts), root="", plotly=False)


# claims.parquet's columns shown: on an experiment's page, and (fewer) on the index's scoreboard
CLAIM_COLUMNS = ("id", "claim", "paper", "where", "quote", "paper_value", "measured", "verdict",
                 "stated", "agrees")
NO_CLAIMS = "no claims measured (no claims.parquet)"


def claims_line(claims) -> str:
    """One line for an index card: how many claims of each verdict, or that none was measured."""
    if claims is None or not len(claims) or "verdict" not in claims:
        return NO_CLAIMS
    counts = claims["verdict"].astype(str).value_counts()
    words = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    wrong = int((~claims["agrees"].astype(bool)).sum()) if "agrees" in claims else 0
    return (f"claims measured on this run: {words}"
            + (f"; {wrong} no longer as the experiment file states" if wrong else ""))


def _claims_html(claims) -> str:
    if claims is None or not len(claims):
        return f"<p>{html.escape(NO_CLAIMS[0].upper() + NO_CLAIMS[1:])}.</p>"
    shown = claims[[c for c in CLAIM_COLUMNS if c in claims]]
    return (f"<p>{len(shown)} claims, each measured on these stored results "
            f'(<a href="data/claims.parquet">claims.parquet</a>).</p>'
            f'<div class="scroll claims">{table_html(shown, wrap=True)}</div>')


def scoreboard(entries: list[dict]) -> str:
    """The index's reproduction scoreboard: every claim of every experiment, as measured."""
    rows = []
    for e in entries:
        claims = e["claims"]
        if claims is None or not len(claims):
            rows.append({"experiment": e["slug"], "claim": NO_CLAIMS, "paper": "",
                         "measured": "", "verdict": ""})
            continue
        for c in claims.to_dict("records"):
            paper = " · ".join(str(c.get(k) or "") for k in ("paper", "where") if c.get(k))
            rows.append({"experiment": e["slug"], "claim": c.get("claim", c.get("id", "")),
                         "paper": paper, "measured": c.get("measured"),
                         "verdict": c.get("verdict", "")})
    board = pd.DataFrame(rows, columns=["experiment", "claim", "paper", "measured", "verdict"])
    return ('<h2 id="scoreboard-title">Reproduction scoreboard</h2><p>Every claim of every '
            "experiment, measured on its stored results (claims.parquet).</p>"
            f'<div class="scroll claims" id="scoreboard">{table_html(board, wrap=True)}</div>')


def _facts_html(facts) -> str:
    items = "".join(f'<li{" class=bad" if bad else ""}><b>{html.escape(label)}:</b> '
                    f"{html.escape(value)}</li>" for label, value, bad in facts)
    return f'<ul class="facts">{items}</ul>'


def table_html(df: pd.DataFrame, wrap: bool = False) -> str:
    """An HTML table of `df`, every cell escaped, numbers to 4 significant digits; `wrap` lets
    long text (a claim, a quote) wrap in its cell."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_value(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return (f"<table{' class=wrap' if wrap else ''}><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _value(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return "" if v is None or v is pd.NA else str(v)


def _page(title: str, body: str, root: str, plotly: bool) -> str:
    script = f'<script src="{root}{PLOTLY_JS}"></script>\n' if plotly else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n{script}</head>\n"
            f"<body>\n{body}\n</body></html>\n")
