"""Benchmark: instructions per in-process costmodel.estimate(), counted by valgrind's callgrind. Prints counts and
their ratio against another revision; asserts nothing.

Wall time on a shared virtual machine moves by up to 2x from minute to minute; the instructions a call executes do
not, so a change of a few percent shows in one run. Each figure is (the instructions of a process making `calls` + 100
estimates - those of one making 100) / `calls`: the imports, the catalogue (parsed whole in both) and the warm-up
cancel out.

    python benchmarks/bench_instructions.py [--calls 300] [--against REV]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

WARM = 100  # estimates made before the counted ones, in both processes
CALL = ("import sys, costmodel\n"
        "for _ in range(int(sys.argv[1])):\n"
        "    costmodel.estimate('llama-3.1-70b', hw='h100', fmt='w4a16')\n")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collected(tree: str, calls: int) -> int:
    """The instructions callgrind counts in a process making `calls` estimates with the package of `tree`: every
    process parses every YAML (no catalogue or parse cache: a cache the first process writes would make the next
    one's start cheaper, and the difference would not cancel), with the same hash seed."""
    with tempfile.TemporaryDirectory() as empty:
        env = {**os.environ, "PYTHONPATH": tree, "PYTHONHASHSEED": "0", "COSTMODEL_NO_PARSE_CACHE": "1",
               "COSTMODEL_CACHE": os.path.join(empty, "none")}
        done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
                               CALL, str(calls)], capture_output=True, text=True, env=env, cwd=tree, check=True)
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def per_estimate(tree: str, calls: int) -> float:
    return (collected(tree, WARM + calls) - collected(tree, WARM)) / calls


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=300, help="estimates counted (beyond the %d both processes make)" % WARM)
    p.add_argument("--against", metavar="REV", help="a git revision of this repository to count as well")
    a = p.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind not installed (apt install valgrind): no instruction counts")
        return
    here = per_estimate(ROOT, a.calls)
    line = f"one estimate (Llama 3.1 70B, H100, W4A16): {here:,.0f} instructions (this tree"
    if a.against:
        with tempfile.TemporaryDirectory() as tmp:
            tree = os.path.join(tmp, "tree")
            subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-f", tree, a.against],
                           capture_output=True, check=True)
            try:
                base = per_estimate(tree, a.calls)
            finally:
                subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", tree], capture_output=True)
        line += f"), {base:,.0f} at {a.against}: {base / here:.3f}x as many there"
    else:
        line += ")"
    print(line)


if __name__ == "__main__":
    main()
