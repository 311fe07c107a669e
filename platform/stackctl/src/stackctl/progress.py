"""The one live progress display of bring-up and training, on every backend."""

from __future__ import annotations

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def progress_display(console: Console) -> Progress:
    """One row per component: spinner (a tick when done), name, elapsed time, what it waits on."""
    return Progress(
        SpinnerColumn(finished_text="[green]✓"),
        TextColumn("[bold]{task.fields[component]:<22}"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    )
