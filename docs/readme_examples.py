"""Regenerate (or check) the example outputs in README.md by running their commands.

Every ```text block in README.md whose lines start with `$ costmodel ...` is an example: the
command (continued over lines ending in a backslash) is run and the lines after it, up to the
next `$` line, are its output. A trailing `# grep: PATTERN` keeps only the matching lines; any
other trailing `# comment` is kept in the README and ignored when running.

    python docs/readme_examples.py           # rewrite README.md with what the commands print today
    python docs/readme_examples.py --check   # exit 1 and list the examples that differ
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```text\n(\$ costmodel.*?)```", re.S)


def _commands(block: str) -> list[tuple[list[str], str]]:
    """(command lines as written, the output written under it) for each `$` command of a block."""
    lines = block.rstrip("\n").split("\n")
    out, i = [], 0
    while i < len(lines):
        cmd = [lines[i]]
        while cmd[-1].rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            cmd.append(lines[i])
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("$ costmodel"):
            body.append(lines[i])
            i += 1
        out.append((cmd, "\n".join(body)))
    return out


def run(cmd_lines: list[str]) -> str:
    """The output of one README command (stderr notes included, as a terminal shows them)."""
    text = " ".join(line.rstrip().rstrip("\\") for line in cmd_lines)[2:]
    text, _, comment = text.partition("  #")
    grep = comment.strip()[len("grep:"):].strip() if comment.strip().startswith("grep:") else None
    args = shlex.split(text)
    # the shipped catalogue only: no user catalogue or COSTMODEL_PATH may change the README
    env = {k: v for k, v in os.environ.items() if k != "COSTMODEL_PATH"}
    env.update(COLUMNS="160", COSTMODEL_HOME=str(README.parent / ".no-user-catalogue"))
    done = subprocess.run([sys.executable, "-m", "costmodel", *args[1:]], capture_output=True, text=True, env=env,
                          cwd=README.parent, timeout=300)
    output = done.stderr + done.stdout
    lines = [line.rstrip() for line in output.strip("\n").split("\n")]
    if grep:
        lines = [line for line in lines if re.search(grep, line)]
    return "\n".join(lines)


def regenerate(check: bool = False) -> list[str]:
    """Rewrite the README's examples (or, with check, only report which differ)."""
    text = README.read_text(encoding="utf-8")
    stale = []

    def redo(match: re.Match) -> str:
        parts = []
        for cmd, old in _commands(match.group(1)):
            new = run(cmd)
            if [line.rstrip() for line in old.split("\n")] != new.split("\n"):
                stale.append(" ".join(cmd)[:100])
            parts.append("\n".join(cmd) + "\n" + new)
        return "```text\n" + "\n".join(parts) + "\n```"

    new_text = BLOCK.sub(redo, text)
    if not check and new_text != text:
        README.write_text(new_text, encoding="utf-8")
    return stale


if __name__ == "__main__":
    stale = regenerate(check="--check" in sys.argv)
    for s in stale:
        print(("stale: " if "--check" in sys.argv else "updated: ") + s)
    sys.exit(1 if stale and "--check" in sys.argv else 0)
