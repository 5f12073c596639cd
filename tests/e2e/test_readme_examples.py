"""The README's HTTP examples, run as written against a real runtime.

Every ```bash block of the README with an expected answer in it is run, in README order, as one
bash script, from a directory holding only `.dev-api-key` (the runtime's key) and the checkout's
`.venv`: what a reader in a fresh shell has. An expected answer is a comment right under a
`curl` command: `# <status> <body>`, continued on comment lines that start with `#  `. The body is
JSON with three shorthands: `…` for any value (or, inside a string, any text there), a member
without a value (`{"ammKey","label"}`) for a field that must be present, and an array's elements
each matching some element of the answer's array. Extra fields in the answer are fine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.runtime import ROOT, Runtime

README = ROOT / "README.md"
EXPECTED = re.compile(r"^# (\d{3})(?: (.*))?$")
CONTINUED = "#  "
PROLOGUE = """set -euo pipefail
readme_curl() {  # curl, keeping the status and body of answer $1 in $ANSWERS/$1; prints the body
  local n=$1; shift
  command curl -sS -w '\\n%{http_code}' "$@" > "$ANSWERS/$n"
  sed '$d' "$ANSWERS/$n"
}
"""


@dataclass(frozen=True)
class Example:
    command: str
    """The curl line as the README writes it (its first line)."""
    status: int
    body: str
    """The expected body, in the shorthand above (empty: only the status is documented)."""


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def examples_script(text: str, base: str) -> tuple[str, list[Example]]:
    """The README's example blocks as one script (each documented curl recording its answer), and
    what each answer should be, in order."""
    lines, examples, last_curl = [], [], None
    for block in (b for b in bash_blocks(text) if any(EXPECTED.match(line) for line in b.splitlines())):
        for line in block.splitlines():
            expected = EXPECTED.match(line)
            if expected:
                assert last_curl is not None, f"an expected answer with no curl command above it: {line}"
                examples.append(Example(lines[last_curl], int(expected.group(1)), expected.group(2) or ""))
                lines[last_curl] = lines[last_curl].replace("curl ", f"readme_curl {len(examples)} ", 1)
                last_curl = None
            elif line.startswith(CONTINUED) and examples and last_curl is None:
                examples[-1] = Example(examples[-1].command, examples[-1].status, examples[-1].body + line[len(CONTINUED):])
            else:
                if re.search(r"(^|[\s(])curl ", line) and not line.lstrip().startswith("#"):
                    last_curl = len(lines)
                lines.append(line)
    script = "\n".join(lines).replace("localhost:8000", base.removeprefix("http://"))
    return PROLOGUE + script + "\n", examples


# --- the answers' shorthand ---

ANY = object()


@dataclass(frozen=True)
class Text:
    """A string with `…` in it: any text where the `…` is."""

    prefix: str
    suffix: str


@dataclass(frozen=True)
class Elements:
    patterns: list
    open: bool
    """`…` among the elements: any other elements too (`[…]`: any array)."""


TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>-?\d+(?:\.\d+)?)|(?P<literal>true|false|null)'
                   r'|(?P<any>…)|(?P<mark>[{}\[\],:]))')


def tokens(text: str) -> list[tuple[str, str]]:
    found, at = [], 0
    while text[at:].strip():
        match = TOKEN.match(text, at)
        assert match, f"cannot read the expected answer at {text[at:at + 30]!r}"
        kind = match.lastgroup
        found.append((kind, match.group(kind)))
        at = match.end()
    return found


def pattern(text: str):
    """The shorthand body as a pattern: dicts, Elements, Text, ANY and plain JSON values."""
    stream = tokens(text)
    position = 0

    def take() -> tuple[str, str]:
        nonlocal position
        position += 1
        return stream[position - 1]

    def peek() -> str:
        return stream[position][1] if position < len(stream) else ""

    def value():
        kind, token = take()
        if token == "{":
            members = {}
            while peek() != "}":
                kind, token = take()
                if kind == "string":
                    name = json.loads(token)
                    members[name] = ANY
                    if peek() == ":":
                        take()
                        members[name] = value()
                if peek() == ",":
                    take()
            take()
            return members
        if token == "[":
            patterns, open_ = [], False
            while peek() != "]":
                if peek() == "…":
                    take()
                    open_ = True
                else:
                    patterns.append(value())
                if peek() == ",":
                    take()
            take()
            return Elements(patterns, open_)
        if kind == "any":
            return ANY
        if kind == "string" and "…" in token:
            prefix, _, suffix = json.loads(token).partition("…")
            return Text(prefix, suffix)
        return json.loads(token)

    result = value()
    assert position == len(stream), f"trailing text in the expected answer: {stream[position:]}"
    return result


def mismatches(expected, actual, where: str = "$") -> list[str]:
    """How `actual` (a decoded answer) differs from the pattern; empty when it fits."""
    if expected is ANY:
        return []
    if isinstance(expected, Text):
        fits = isinstance(actual, str) and actual.startswith(expected.prefix) and actual.endswith(expected.suffix)
        return [] if fits else [f"{where}: {actual!r} is not {expected.prefix}…{expected.suffix}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: {actual!r} is not an object"]
        found = []
        for name, inner in expected.items():
            if name not in actual:
                found.append(f"{where}.{name}: missing")
            else:
                found += mismatches(inner, actual[name], f"{where}.{name}")
        return found
    if isinstance(expected, Elements):
        if not isinstance(actual, list):
            return [f"{where}: {actual!r} is not an array"]
        if not expected.patterns and not expected.open:
            return [] if actual == [] else [f"{where}: {actual!r} is not empty"]
        return [f"{where}: no element fits {inner!r}" for inner in expected.patterns
                if not any(not mismatches(inner, element) for element in actual)]
    same = expected == actual and type(expected) is type(actual)
    return [] if same else [f"{where}: {actual!r}, documented {expected!r}"]


def test_the_shorthand_fits_what_it_says_and_nothing_else():
    documented = pattern('{"orderId":"…","status":"pending","plan":{"legs":[{"venue","amountIn"}]},"n":1,'
                         '"spot":"0.0001…","all":[…],"none":[],"x":…}')
    answer = {"orderId": "01a2", "status": "pending", "plan": {"legs": [{"venue": "raydium", "amountIn": 5}]},
              "n": 1, "spot": "0.000123", "all": [1], "none": [], "x": None, "extra": True}
    assert mismatches(documented, answer) == []
    assert mismatches(documented, {**answer, "status": "confirmed"}) == ["$.status: 'confirmed', documented 'pending'"]
    assert mismatches(documented, {**answer, "plan": {"legs": [{"venue": "raydium"}]}}) != []
    assert mismatches(documented, {**answer, "spot": "0.0002"}) != []
    assert mismatches(documented, {**answer, "none": [1]}) != []
    assert mismatches(documented, {**answer, "n": True}) != []
    assert mismatches(documented, {k: v for k, v in answer.items() if k != "x"}) == ["$.x: missing"]


def test_the_readme_documents_its_examples():
    _, examples = examples_script(README.read_text(), "http://127.0.0.1:8000")
    assert len(examples) >= 10
    for example in examples:
        pattern(example.body or "…")  # every expected answer reads


@pytest.fixture(scope="module")
def answers(runtime: Runtime, tmp_path_factory) -> tuple[list[Example], Path]:
    """Run the README's examples once: what each documented curl answered, in $ANSWERS/<n>."""
    home = tmp_path_factory.mktemp("reader")
    (home / ".dev-api-key").write_text(runtime.api_key + "\n")
    (home / ".venv").symlink_to(ROOT / ".venv")
    found = home / "answers"
    found.mkdir()
    script, examples = examples_script(README.read_text(), runtime.base)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANSWERS": str(found), "DEX_URL": runtime.base}
    result = subprocess.run(["bash", "-c", script], cwd=home, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, f"the examples stopped ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return examples, found


def test_every_example_answers_its_documented_status_and_fields(answers):
    examples, found = answers
    failures = []
    for n, example in enumerate(examples, start=1):
        answer = found / str(n)
        if not answer.exists():
            failures.append(f"{example.command!r} did not run")
            continue
        *body, status = answer.read_text().split("\n")
        text = "\n".join(body)
        if int(status) != example.status:
            failures.append(f"{example.command!r}: {status}, documented {example.status}: {text[:300]}")
            continue
        if example.body:
            failures += [f"{example.command!r}: {problem}" for problem in mismatches(pattern(example.body), json.loads(text))]
    assert not failures, "\n".join(failures)
