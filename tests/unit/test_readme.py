"""The README stays true where it can be checked without a runtime: its settings table is the
settings (names and defaults, in shared/settings.py's order), its file map names every module and
nothing that does not exist, its topics come in the agreed order, and the bench scenarios it lists
are the bench's. (Its HTTP examples are run by tests/e2e/test_readme_examples.py.)

`python -m tests.unit.test_readme` prints the settings table regenerated from shared/settings.py,
keeping each row's description from the README: paste it over the README's table."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from loadtest.bench import SCENARIOS
from shared import settings as settings_module
from shared.settings import Settings, SimulationSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAPPED_PACKAGES = ("functions", "shared", "local_runtime", "cloud", "client")
"""Every module of these must be in the README's file map."""
TOPICS = ["Two commands", "A 60-second tour", "API", "Configuration", "Architecture", "Deploy", "Load test"]
"""The README's sections (after the title and what the engine is), in this order and no others."""
NEW_ROW = "(describe it)"


def readme() -> str:
    return README.read_text()


def section(text: str, title: str) -> str:
    """The body of the `## title` section, up to the next `## `."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


# --- settings ---

def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`" if value != "" else "(empty)"


def settings_rows() -> list[tuple[str, str]]:
    """(environment variable, default as the table shows it) for every setting, in settings.py's order."""
    defaults, sim = Settings(), SimulationSettings()
    rows = [(settings_module._TOP_LEVEL_ALIASES.get(f.name, settings_module._ENV_PREFIX + f.name.upper()),
             _shown(getattr(defaults, f.name))) for f in fields(Settings) if f.name != "sim"]
    rows += [(settings_module._SIM_PREFIX + f.name.upper(), _shown(getattr(sim, f.name))) for f in fields(SimulationSettings)]
    return rows


def first_table(text: str) -> list[list[str]]:
    """The cells of the first table in `text`, its header and rule left out."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
        elif rows:
            break
    return rows[2:]


def readme_settings(text: str) -> list[list[str]]:
    return first_table(section(text, "Configuration"))


def generated_settings_table(text: str) -> str:
    """The README's settings table regenerated from settings.py: its descriptions kept."""
    described = {row[0].strip("`"): row[2] for row in readme_settings(text) if len(row) == 3}
    lines = ["| variable | default | |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {default} | {described.get(name, NEW_ROW)} |" for name, default in settings_rows()]
    return "\n".join(lines)


SAMPLES = {"DEX_LOG_FORMAT": "json", "DEX_QUEUE_BACKEND": "sqs", "DEX_MAX_ORDER_SIZES": "SOL=1"}
"""A value other than the default that the setting accepts (else: the other boolean, 12345, or "x")."""


def test_every_environment_variable_in_the_table_is_read_by_load_settings():
    """The generator's names are the ones load_settings reads: setting each changes the settings."""
    baseline = load_settings({})
    for name, default in settings_rows():
        flipped = {"`false`": "true", "`true`": "false"}.get(default)
        sample = SAMPLES.get(name) or flipped or ("12345" if default.strip("`").isdigit() else "x")
        assert load_settings({name: sample}) != baseline, f"{name} does not change any setting"


def test_the_settings_table_is_every_setting_with_its_default_in_order():
    rows = readme_settings(readme())
    assert [(row[0].strip("`").split()[0], row[1]) for row in rows] == [
        (name, default) for name, default in settings_rows()], (
        "the README's settings table differs from shared/settings.py: run `python -m tests.unit.test_readme`"
        " and paste its table")
    assert all(len(row) == 3 and row[2] and row[2] != NEW_ROW for row in rows), "a setting has no description"


def test_the_settings_table_is_what_the_generator_prints():
    text = readme()
    assert generated_settings_table(text) in section(text, "Configuration")


# --- file map ---

def file_map(text: str) -> str:
    blocks = re.findall(r"^```\n(functions/.*?)^```", section(text, "Architecture"), re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the Architecture section has one file map block, starting with functions/"
    return blocks[0]


PATH_TOKEN = re.compile(r"[\w.-]+(\.py|\.yaml|\.json|\.md|/)")
DESCRIPTION_COLUMN = 20
"""A map line indented this far or more continues the description above it."""


def mapped_paths(block: str) -> set[str]:
    """Every path the map names: on each line, the leading tokens that are file or folder names,
    under the folder of the line above it with less indentation (two spaces a level). So a
    description must not start with a file name."""
    paths, parents = set(), []
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent >= DESCRIPTION_COLUMN:
            continue
        level = indent // 2
        parents = parents[:level]
        here = "".join(parents)
        folder = None
        for token in line.split():
            if not PATH_TOKEN.fullmatch(token):
                break
            paths.add(here + token)
            if token.endswith("/"):
                folder = token
        if folder is not None:
            parents.append(folder)
    return paths


def modules() -> set[str]:
    """Every module of the mapped packages, except __init__.py and migrations (their folder is named)."""
    found = set()
    for package in MAPPED_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if path.name != "__init__.py" and "__pycache__" not in relative and "piccolo_migrations/" not in relative:
                found.add(relative)
    return found


def test_the_file_map_names_every_module():
    named = mapped_paths(file_map(readme()))
    missing = sorted(modules() - named)
    assert not missing, f"modules missing from the README's file map: {missing}"


def test_every_path_the_file_map_names_exists():
    named = mapped_paths(file_map(readme()))
    assert {"functions/pipeline.py", "shared/adapters/postgres/repository.py", "local_runtime/console/"} <= named
    absent = sorted(path for path in named if not (ROOT / path).exists())
    assert not absent, f"the README's file map names paths that do not exist: {absent}"


def test_mapped_paths_reads_folders_and_continuations():
    block = ("functions/            the layer\n"
             "  intake.py quote.py   steps\n"
             "shared/\n"
             "  adapters/           ports' implementations\n"
             "    redis/            where publisher.py lives: a description\n"
             "      lease.py        the lease\n"
             "                      continued: not_a_path.py\n")
    assert mapped_paths(block) == {"functions/", "functions/intake.py", "functions/quote.py", "shared/",
                                   "shared/adapters/", "shared/adapters/redis/", "shared/adapters/redis/lease.py"}


# --- order of topics, and the rest ---

def test_the_topics_come_in_order():
    text = readme()
    assert text.startswith("# DEX order execution engine\n\nAn order execution engine"), "what it is comes first"
    assert re.findall(r"^## (.+)$", text, re.MULTILINE) == TOPICS


def test_the_tour_shows_the_console_screenshot():
    tour = section(readme(), "A 60-second tour")
    assert "](docs/console.png)" in tour
    assert (ROOT / "docs" / "console.png").stat().st_size > 10_000


def test_the_load_test_section_lists_every_bench_scenario():
    paragraph = next(p for p in section(readme(), "Load test").split("\n\n") if "`--only SCENARIO …`" in p)
    listed = re.findall(r"`([\w-]+)`", paragraph)
    assert listed == list(SCENARIOS), f"the bench's scenarios, in its order: {list(SCENARIOS)}"


def test_every_link_inside_the_readme_reaches_a_heading():
    text = readme()
    anchors = {re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-") for title in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    for target in re.findall(r"\]\(#([^)]+)\)", text):
        assert target in anchors, f"link to #{target}: no such heading"
    for target in re.findall(r"\]\((?!https?:|#)([^)]+)\)", text):
        assert (ROOT / target).exists(), f"link to {target}: no such file"


if __name__ == "__main__":
    print(generated_settings_table(readme()))
