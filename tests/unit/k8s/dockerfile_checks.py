"""Our Dockerfile rules (hadolint, when installed, lints the rest): every base image pinned as
name:tag@sha256:<digest>, no `latest`, the final stage runs as a non-root USER."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

PINNED = re.compile(r"^[^@\s]+:[^@:/\s]+@sha256:[0-9a-f]{64}$")
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
ROOT_USERS = frozenset({"root", "0", "0:0", "root:root"})


@dataclass
class Instruction:
    keyword: str
    arguments: str
    line: int


@dataclass
class Stage:
    image: str
    name: str | None
    line: int
    users: list[str] = field(default_factory=list)


def instructions(text: str) -> list[Instruction]:
    """Logical instructions: continuation lines joined, comments and blank lines dropped."""
    result: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        pending += " " + stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, arguments = pending.strip().partition(" ")
            result.append(Instruction(keyword.upper(), arguments.strip(), start))
            pending = ""
    return result


def _expand(value: str, variables: dict[str, str]) -> str:
    return VARIABLE.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), value)


def stages(text: str) -> list[Stage]:
    """FROM stages with ARG defaults (declared before the first FROM) substituted."""
    variables: dict[str, str] = {}
    found: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "ARG" and not found:
            name, _, default = instruction.arguments.partition("=")
            variables[name.strip()] = default.strip().strip('"')
        elif instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            found.append(Stage(_expand(words[0], variables), name, instruction.line))
        elif instruction.keyword == "USER" and found:
            found[-1].users.append(instruction.arguments.strip())
    return found


def check_dockerfile(
    text: str, label: str, *, targets: tuple[str, ...] = (), local_bases: tuple[str, ...] = ()
) -> list[str]:
    """Violations of ``text`` (a Dockerfile), each starting with ``label``. ``targets`` are the
    stages built as images (default: the last one); ``local_bases`` images built on this
    machine (stand-ins), which have no registry digest to pin."""
    found = stages(text)
    if not found:
        return [f"{label}: no FROM"]
    stage_names = {s.name for s in found if s.name}
    problems = []
    for stage in found:
        if stage.image in stage_names or stage.image in local_bases:
            continue
        if ":latest" in stage.image or ":" not in stage.image.split("@")[0].rsplit("/", 1)[-1]:
            problems.append(f"{label}:{stage.line}: FROM {stage.image} uses `latest` or no tag")
        if not PINNED.match(stage.image):
            problems.append(
                f"{label}:{stage.line}: FROM {stage.image} is not pinned as name:tag@sha256:<digest>"
            )
    for instruction in instructions(text):
        match = (
            re.search(r"--from=(\S+)", instruction.arguments)
            if instruction.keyword == "COPY"
            else None
        )
        source = match.group(1) if match else None
        if (
            source
            and source not in stage_names
            and not source.isdigit()
            and not PINNED.match(source)
        ):
            problems.append(f"{label}:{instruction.line}: COPY --from={source} is not pinned")
    by_name = {s.name: s for s in found if s.name}
    finals = [by_name[t] for t in targets if t in by_name] if targets else [found[-1]]
    problems += [f"{label}: no stage {t}" for t in targets if t not in by_name]
    for final in finals:
        which = f"stage {final.name}" if targets else "the final stage"
        if not final.users:
            problems.append(
                f"{label}: {which} sets no USER (it would run as the base image's user)"
            )
        elif final.users[-1].lower() in ROOT_USERS:
            problems.append(f"{label}: {which} runs as {final.users[-1]}")
    return problems


def stage_instructions(text: str, name: str) -> list[Instruction]:
    """The instructions of stage ``name`` (from its FROM to the next FROM)."""
    result: list[Instruction] = []
    inside = False
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.arguments.split()
            inside = len(words) >= 3 and words[1].upper() == "AS" and words[2] == name
            continue
        if inside:
            result.append(instruction)
    return result


def copy_sources(text: str) -> list[str]:
    """Build-context paths of COPY/ADD instructions (not --from copies)."""
    sources = []
    for instruction in instructions(text):
        if instruction.keyword not in ("COPY", "ADD") or "--from=" in instruction.arguments:
            continue
        words = [w for w in instruction.arguments.split() if not w.startswith("--")]
        sources += words[:-1]
    return sources
