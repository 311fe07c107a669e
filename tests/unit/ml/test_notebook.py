"""The analysis notebook runs headless, top to bottom, and is committed without outputs."""

from __future__ import annotations

import time

import nbformat
import pytest
from ml_testdata import REPO_ROOT
from nbclient import NotebookClient

NOTEBOOK = REPO_ROOT / "ai-analysis" / "diamonds_analysis.ipynb"


def test_notebook_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert code_cells
    assert all(c.outputs == [] and c.execution_count is None for c in code_cells)
    source = "\n".join(c.source for c in code_cells)
    assert "data.clean_frame(" in source
    assert "features.build_preprocessor(" in source


@pytest.mark.slow
def test_notebook_executes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",  # the venv's ipykernel (jupyter_client runs it with sys.executable)
        timeout=600,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    started = time.perf_counter()
    client.execute()
    print(f"\nnotebook executed in {time.perf_counter() - started:.1f}s")
    code_cells = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code_cells)
    errors = [o for c in code_cells for o in c.outputs if o.output_type == "error"]
    assert not errors
    printed = "".join(o.get("text", "") for c in code_cells for o in c.outputs)
    assert "53940 rows: 53753 clean, 187 quarantined" in printed
    assert "median absolute relative error" in printed
