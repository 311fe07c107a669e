"""Series names a Prometheus scrape of an exposition text yields, and the fixture files that list them.

One reader for every source of "names that really exist": a scraped ``/metrics`` page of MLflow,
SeaweedFS or the Pushgateway, and the text ``prometheus_client.generate_latest`` makes of the model
server's registry. Names are taken from the ``# TYPE`` lines (expanded by type, so a histogram with no
observation yet still counts its ``_bucket``/``_sum``/``_count``) and from every sample line.
"""

from __future__ import annotations

import re
from pathlib import Path

_TYPE_LINE = re.compile(r"^# TYPE (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?P<kind>\w+)\s*$")
_SAMPLE_NAME = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)[\s{]")

# The series a family of each type produces in the text format (suffixes appended to the family name).
SERIES_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("",),
    "gauge": ("",),
    "untyped": ("",),
    "unknown": ("",),
    "info": ("",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}


def series_from_exposition(text: str) -> dict[str, str]:
    """Map every series name the exposition ``text`` yields to the type of its family."""
    series: dict[str, str] = {}
    family_of_prefix: list[tuple[str, str]] = []
    for line in text.splitlines():
        type_line = _TYPE_LINE.match(line)
        if type_line:
            name, kind = type_line["name"], type_line["kind"]
            family_of_prefix.append((name, kind))
            for suffix in SERIES_SUFFIXES.get(kind, ("",)):
                series[name + suffix] = kind
            continue
        sample = _SAMPLE_NAME.match(line)
        if sample and sample["name"] not in series:
            series[sample["name"]] = _family_type(sample["name"], family_of_prefix)
    return series


def _family_type(sample: str, families: list[tuple[str, str]]) -> str:
    """Type of the longest declared family ``sample`` belongs to (``untyped`` when none)."""
    owners = [(name, kind) for name, kind in families if sample.startswith(name)]
    return max(owners, key=lambda owner: len(owner[0]))[1] if owners else "untyped"


def read_series_file(path: Path) -> dict[str, str]:
    """Read a ``<series> <type>`` fixture file (``#`` lines are comments)."""
    series: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{number}: expected '<series name> <type>', got {raw!r}")
        series[parts[0]] = parts[1]
    return series


def write_series_file(path: Path, series: dict[str, str], *, header: list[str]) -> None:
    """Write ``series`` sorted, one ``<series> <type>`` line each, below ``#`` header lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# {line}" for line in header] + [f"{n} {k}" for n, k in sorted(series.items())]
    path.write_text("\n".join(lines) + "\n")
