"""`toysuper report`: the site it writes, opened from file:// in a real headless browser
(Debian's chromium, driven by selenium through its chromedriver), and its one-line errors.

CI installs the browser and sets TOYSUPER_BROWSER=required (.ci/run), so there a missing one
fails these tests; elsewhere (a fresh machine running the README's test command) they skip and
say what to install.
"""

import os
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd
import pytest

from toysuper import cli, report

ROOT = Path(__file__).resolve().parent.parent
SHOWN = ("intro", "nonuniform", "phase_n2")  # feature planes, many cells, a phase diagram
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking")


def _copy(names, dest: Path) -> Path:
    """Copies of committed results directories (their resumable parts left behind)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copytree(ROOT / "results" / name, dest / name, ignore=shutil.ignore_patterns("parts"))
    return dest


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    results = _copy(SHOWN, tmp_path_factory.mktemp("results"))
    # the runtime shown is the copy's own: a user's run never changes what these tests read
    (results / "intro" / "summary.json").write_text(
        '{"models": 18, "chunks": 1, "trained_chunks": 1, "seconds": 1234.5}')
    (results / "nonuniform" / "claims.parquet").unlink()  # a run whose claims were not measured
    built = tmp_path_factory.mktemp("built") / "site"
    assert cli.main(["report", str(results), "--out", str(built)]) == 0
    # the site folder alone, moved away from the results it was made from, must still work
    moved = tmp_path_factory.mktemp("moved") / "site"
    shutil.move(built, moved)
    shutil.rmtree(results)
    return moved


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing and os.environ.get("TOYSUPER_BROWSER") != "required":
        pytest.skip(f"{', '.join(missing)} missing: apt-get install chromium chromium-driver")
    assert not missing, (f"{', '.join(missing)} missing: apt-get install chromium chromium-driver "
                         f"(.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_window_size(1300, 1000)
    yield driver
    driver.quit()


def _open(browser, path: Path):
    browser.get(path.as_uri())  # returns after the load event: images are in by then
    return browser


def _wait_for(browser, css: str, seconds: float = 20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _hover(browser, element):
    """A real mouse move onto `element`, as a user's pointer makes it."""
    from selenium.webdriver.common.action_chains import ActionChains

    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    ActionChains(browser).move_to_element(element).perform()
    return _wait_for(browser, ".hoverlayer .hovertext", seconds=5).text


def test_index_lists_every_experiment_with_its_numbers(site, browser):
    _open(browser, site / "index.html")
    cards = browser.find_elements("css selector", ".card")
    assert [c.find_element("css selector", "h2 a").text for c in cards] == list(SHOWN)
    text = {c.find_element("css selector", "h2 a").text: c.text for c in cards}
    assert "models: 18" in text["intro"] and "runtime: 20.6 min" in text["intro"]
    # claims as measured on this run (claims.parquet), never the experiment file's prose
    claims = pd.read_parquet(ROOT / "results" / "intro" / "claims.parquet")
    counts = claims["verdict"].value_counts()
    assert all(f"{n} {verdict}" in text["intro"] for verdict, n in counts.items())
    assert "Measured" not in text["intro"]
    assert "no claims measured" in text["nonuniform"]
    # phase_n2's stored sweep holds 1 local minimum after its polish rounds, which its
    # experiment file declares
    assert "local minima: 1 of 1,024 cells" in text["phase_n2"]
    assert "traps declared: yes" in text["phase_n2"] and "traps declared: no" in text["intro"]
    assert "diverged: 0" in text["nonuniform"] and "models: 512" in text["nonuniform"]


def test_index_holds_the_reproduction_scoreboard(site, browser):
    """One row per claim of every experiment: experiment, claim, paper and where, measured,
    verdict, as the results directories' claims.parquet hold them."""
    _open(browser, site / "index.html")
    board = browser.find_element("css selector", "#scoreboard table")
    head = [th.text for th in board.find_elements("css selector", "thead th")]
    assert head == ["experiment", "claim", "paper", "measured", "verdict"]
    rows = [[td.text for td in tr.find_elements("css selector", "td")]
            for tr in board.find_elements("css selector", "tbody tr")]
    expected = {name: pd.read_parquet(ROOT / "results" / name / "claims.parquet")
                for name in SHOWN if name != "nonuniform"}
    assert len(rows) == sum(len(c) for c in expected.values()) + 1  # nonuniform: none measured
    for name, claims in expected.items():
        mine = [r for r in rows if r[0] == name]
        assert [r[1] for r in mine] == claims["claim"].tolist()
        assert [r[4] for r in mine] == claims["verdict"].tolist()
        assert all(claims["paper"].iloc[i] in r[2] for i, r in enumerate(mine))
    assert [r[1] for r in rows if r[0] == "nonuniform"] == ["no claims measured (no claims.parquet)"]
    _open(browser, site / "intro" / "index.html")
    shown = browser.find_elements("css selector", ".claims table tbody tr")
    assert len(shown) == len(expected["intro"])


def test_every_link_and_source_resolves_inside_the_site(site, browser):
    pages = [site / "index.html"] + [site / name / "index.html" for name in SHOWN]
    for page in pages:
        _open(browser, page)
        assert "404" not in browser.title and browser.title, page
        urls = browser.execute_script(
            "return Array.from(document.querySelectorAll('a[href], img[src], script[src]'))"
            ".map(e => e.href || e.src)")
        assert urls, page
        for url in urls:
            parts = urlparse(url)
            assert parts.scheme == "file", f"{page} links outside the site: {url}"
            target = Path(unquote(parts.path))
            assert target.is_file(), f"{page}: {url} does not resolve"
            assert target.is_relative_to(site), f"{page}: {url} is outside the site"
    # follow the index's links to each page, as a reader would
    for name in SHOWN:
        _open(browser, site / "index.html")
        browser.find_element("link text", name).click()
        assert browser.find_element("css selector", "h1").text == name
        tables = [h.text for h in browser.find_elements("css selector", "h3")]
        assert {"models", "features", "history", "optima", "neighbours"} <= set(tables)


def test_figures_load(site, browser):
    for name in SHOWN:
        _open(browser, site / name / "index.html")
        widths = browser.execute_script(
            "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == len(list((ROOT / "results" / name / "figures").glob("*.png")))
        assert widths and all(w > 0 for w in widths), (name, widths)
        # every figure links to itself full size: a wide one is readable beyond the page width
        links = browser.execute_script(
            "return Array.from(document.images).map(i => i.parentElement.tagName === 'A' "
            "&& i.parentElement.getAttribute('href') === i.getAttribute('src'))")
        assert all(links), (name, links)


def test_phase_view_names_the_cell_on_hover(site, browser, tmp_path):
    _open(browser, site / "phase_n2" / "index.html")
    plot = _wait_for(browser, "#phase-view .nsewdrag")
    # the plot's centre: r = 1, p = 0.1, deep in the superposition phase by theory and training
    text = _hover(browser, plot)
    for words in ("kept model", "loss", "phase: superposition", "theory: superposition",
                  "seed share"):
        assert words in text, text
    browser.save_screenshot(str(tmp_path / "phase_n2.png"))
    assert (tmp_path / "phase_n2.png").stat().st_size > 10_000


def test_feature_planes_show_norm_and_dimensionality_on_hover(site, browser, tmp_path):
    _open(browser, site / "intro" / "index.html")
    _wait_for(browser, "#plane-view .scatterlayer .points path")
    # the last plane: density 0.05's kept model, a pentagon, no two features on one spot
    points = browser.find_elements("css selector", "#plane-view .scatterlayer .trace")[-1] \
        .find_elements("css selector", ".points path")
    assert len(points) == 5
    text = _hover(browser, points[0])
    found = re.search(r"model (\d+)\s*feature (\d+)\s*\|\|W_i\|\| = ([\d.]+)\s*D_i = ([\d.]+)", text)
    assert found, text
    model, feature = int(found[1]), int(found[2])
    features = pd.read_parquet(ROOT / "results" / "intro" / "features.parquet")
    row = features[(features["model"] == model) & (features["feature"] == feature)].iloc[0]
    assert float(found[3]) == pytest.approx(row["norm"], abs=1e-3)
    assert float(found[4]) == pytest.approx(row["dimensionality"], abs=1e-3)
    browser.save_screenshot(str(tmp_path / "intro.png"))
    _open(browser, site / "index.html").save_screenshot(str(tmp_path / "index.png"))


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("toysuper: error:"), err
    return err


def test_empty_results_folder_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default --out, report/, would go
    (tmp_path / "empty").mkdir()
    assert cli.main(["report", str(tmp_path / "empty")]) == 2
    assert "no finished results directory" in _one_line_error(capsys)
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize("results, out, words", [
    ("{tmp}/missing", "{tmp}/site", ["results folder", "does not exist"]),
    ("{tmp}/a_file", "{tmp}/site", ["is a file", "folder of results directories"]),
    ("{tmp}/unfinished", "{tmp}/site", ["only unfinished runs", "half"]),
    ("{tmp}/results", "{tmp}/a_file", ["--out", "is a file"]),
    ("{tmp}/results", "{tmp}/results/intro", ["is not a toysuper report", "another --out"]),
    ("{tmp}/results", "{tmp}", ["holds the results folder"]),
])
def test_bad_input_is_a_one_line_error(results, out, words, tmp_path, capsys):
    _copy(["intro"], tmp_path / "results")
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "unfinished" / "half").mkdir(parents=True)
    shutil.copy(ROOT / "results" / "intro" / "config.toml", tmp_path / "unfinished" / "half")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = ["report", results.format(tmp=tmp_path), "--out", out.format(tmp=tmp_path)]
    assert cli.main(args) == 2
    err = _one_line_error(capsys)
    for w in words:
        assert w in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_unfinished_and_damaged_runs_are_listed_not_fatal(tmp_path, capsys):
    results = _copy(["intro"], tmp_path / "results")
    shutil.copytree(results / "intro", results / "broken")
    (results / "broken" / "models.parquet").unlink()
    (results / "half").mkdir()
    shutil.copy(results / "intro" / "config.toml", results / "half")
    assert cli.main(["report", str(results), "--out", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    assert "left out broken: results in" in err and "models.parquet is missing" in err
    assert "left out half: unfinished" in err
    index = (tmp_path / "site" / "index.html").read_text()
    assert "models.parquet is missing" in index and "half: unfinished" in index
    assert (tmp_path / "site" / "intro" / "index.html").exists()
    assert not (tmp_path / "site" / "broken").exists() and not (tmp_path / "site" / "half").exists()


def test_text_is_escaped(tmp_path):
    results = _copy(["intro"], tmp_path / "results")
    cfg = results / "intro" / "config.toml"
    cfg.write_text(cfg.read_text().replace(
        'description = "Section 1', 'description = "<script>alert(1)</script> & Section 1'))
    claims = pd.read_parquet(results / "intro" / "claims.parquet")
    claims.loc[0, "claim"] = "<script>alert(1)</script> & Section 1"
    claims.to_parquet(results / "intro" / "claims.parquet")
    report.build(results, tmp_path / "site")
    for page in (tmp_path / "site" / "index.html", tmp_path / "site" / "intro" / "index.html"):
        text = page.read_text()
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Section 1" in text
        assert "<script>alert" not in text


def test_runtime_of_a_resumed_run_says_so(tmp_path):
    results = _copy(["intro"], tmp_path / "results")
    (results / "intro" / "summary.json").write_text(
        '{"models": 18, "chunks": 2, "trained_chunks": 1, "seconds": 0.25}')
    index, _ = report.build(results, tmp_path / "site")
    assert "0 s (the last run trained 1 of 2 chunks, the rest were resumed)" in index.read_text()


def test_a_second_report_replaces_the_first_whole(tmp_path):
    results = _copy(["intro"], tmp_path / "results")
    site = tmp_path / "site"
    report.build(results, site)
    (site / "stale.html").write_text("from an older report")
    index, skipped = report.build(results, site)
    assert index == site / "index.html" and index.exists() and not skipped
    assert not (site / "stale.html").exists()
    assert not list(tmp_path.glob(".site.*"))  # the folder it was built in is gone


def test_opening_comment():
    text = "# Title\n#   how to run\n# Measured (2 s): a\n# pentagon.\nname = 'x'\n# not opening\n"
    assert report.opening_comment(text) == ["Title", "  how to run", "Measured (2 s): a", "pentagon."]


def test_nothing_outside_the_results_folder_lands_in_the_site(tmp_path, capsys):
    """Symbolic links to files and folders outside, and a config name that walks out of
    experiments/, are left out and named in one line each; the rest of the site is written."""
    elsewhere = tmp_path / "elsewhere"
    _copy(["intro"], elsewhere)
    (elsewhere / "secret.png").write_bytes(b"SECRET-PNG")
    pd.DataFrame({"SECRET_COLUMN": [1]}).to_parquet(elsewhere / "secret.parquet")
    (elsewhere / "leak.toml").write_text("# SECRET-COMMENT\nname = 'leak'\ntraps = 'SECRET-TRAP'\n")
    results = _copy(["intro"], tmp_path / "results")
    intro = results / "intro"
    (intro / "figures" / "leak.png").symlink_to(elsewhere / "secret.png")
    (intro / "leak.parquet").symlink_to(elsewhere / "secret.parquet")
    (results / "linked").symlink_to(elsewhere / "intro")  # a whole results directory
    shutil.copytree(intro, results / "walker", symlinks=True)
    cfg = results / "walker" / "config.toml"
    depth = "../" * len(ROOT.parts)  # from experiments/ to / and back down to `elsewhere`
    cfg.write_text(cfg.read_text().replace('name = "intro"', f'name = "{depth}{elsewhere}/leak"'))
    shutil.copytree(intro, results / "crash", ignore=shutil.ignore_patterns("leak*"))
    pd.DataFrame({"nothing": [1]}).to_parquet(results / "crash" / "models.parquet")

    assert cli.main(["report", str(results), "--out", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err
    lines = {re.match(r"toysuper: left out (\S+): ", line)[1]: line
             for line in err.strip().splitlines()}
    assert "figures/leak.png" in lines["intro"] and "leak.parquet" in lines["intro"]
    assert "a link out of" in lines["linked"]
    assert "name = " in lines["walker"] and "may not start with '.'" in lines["walker"]
    assert "crash" in lines  # unreadable in some other way: listed, not fatal
    site = tmp_path / "site"
    assert (site / "intro" / "index.html").is_file()
    for f in site.rglob("*"):
        assert not f.is_symlink(), f
        if f.is_file():
            assert b"SECRET" not in f.read_bytes(), f
    assert not (site / "linked").exists() and not (site / "walker").exists()


DAMAGES = ("delete", "truncate", "garbage", "link out", "a folder")


def _doctor(path: Path, how: str, outside: Path) -> None:
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif how == "garbage":
        path.write_bytes(b"\x00<script>alert(1)</script>\xff" * 3)
    elif how == "link out":
        path.unlink()
        path.symlink_to(outside)
    else:
        path.unlink()
        path.mkdir()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return _copy(["intro"], tmp_path_factory.mktemp("pristine")) / "intro"


def test_any_doctored_results_folder_ends_in_a_site_or_one_line_error(pristine, tmp_path_factory):
    """Damaged, replaced or linked-out files in a results directory: `report` writes the site
    (listing what it left out) or refuses in one line, never a traceback and never a copy of
    what lies outside (hypothesis over which files and how)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    names = sorted(str(p.relative_to(pristine)) for p in pristine.rglob("*") if p.is_file())

    @settings(max_examples=12, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(DAMAGES)), min_size=1,
                    max_size=3, unique_by=lambda t: t[0]))
    def check(damages):
        work = tmp_path_factory.mktemp("doctored")
        outside = work / "outside.txt"
        outside.write_text("SECRET-OUTSIDE")
        shutil.copytree(pristine, work / "results" / "intro")
        for name, how in damages:
            _doctor(work / "results" / "intro" / name, how, outside)
        err = _capture(lambda: cli.main(["report", str(work / "results"), "--out",
                                         str(work / "site")]))
        code, text = err
        assert code in (0, 2) and "Traceback" not in text, text
        if code == 2:
            assert text.startswith("toysuper: error:") and text.count("\n") == 1, text
        for f in (work / "site").rglob("*"):
            assert not f.is_symlink() and not (f.is_file() and b"SECRET" in f.read_bytes()), f

    check()


def _capture(fn):
    """(fn's return value, what it wrote on stderr)."""
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer):
        code = fn()
    return code, buffer.getvalue()
