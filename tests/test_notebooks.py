"""The notebooks in notebooks/ run top to bottom in the project's own environment, every cell tagged
`figure` draws an image, every cell tagged `progress` shows its progress bar as a Jupyter widget
(tqdm.auto with ipywidgets), and no output is committed (git keeps them stripped)."""

import asyncio
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import install
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
KERNEL = "toysuper-tests"
WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernel spec running this interpreter (the project's .venv when pytest runs from it), in a
    scratch folder: whatever kernels the user has installed are never used."""
    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name=KERNEL, prefix=str(prefix))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        yield KERNEL


@pytest.fixture(scope="module")
def executed(kernel):
    """Every notebook run top to bottom, each in a kernel of its own, all at once (a kernel
    mostly waits on one core: together they take about as long as the slowest alone). Per
    notebook: the executed notebook, or the exception its run raised (CellExecutionError, naming
    the cell and its traceback, when a cell raised)."""
    nbs = {path: nbformat.read(path, as_version=4) for path in NOTEBOOKS}
    clients = [NotebookClient(nb, kernel_name=kernel, timeout=600,
                              resources={"metadata": {"path": str(path.parent)}})
               for path, nb in nbs.items()]

    async def run_all():
        return await asyncio.gather(*(c.async_execute() for c in clients), return_exceptions=True)

    results = asyncio.run(run_all())
    return {path: (err if isinstance(err, BaseException) else nb)
            for (path, nb), err in zip(nbs.items(), results)}


def test_there_are_notebooks():
    assert {p.name for p in NOTEBOOKS} >= {"tour.ipynb", "own_study.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cell"
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"
    assert any("figure" in c.metadata.get("tags", []) for c in code), f"{path.name} tags no figure cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_draws(path, executed):
    nb = executed[path]
    if isinstance(nb, BaseException):
        raise nb
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "figure" in cell.metadata.get("tags", []):
            images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert images, f"{path.name}, cell {i} (tagged figure) drew nothing:\n{cell.source}"
        if cell.cell_type == "code" and "progress" in cell.metadata.get("tags", []):
            bars = [o for o in cell.outputs if WIDGET in o.get("data", {})]
            assert bars, f"{path.name}, cell {i} (tagged progress) showed no progress widget"
        if cell.cell_type == "code":
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert not errors, f"{path.name}, cell {i} raised {errors[0].ename}"
