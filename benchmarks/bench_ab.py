"""A/B of an in-memory sweep: this tree against a git revision, in one process, in alternating rounds. Prints the
times, their medians, the ratio and each pair's; asserts nothing.

    python benchmarks/bench_ab.py REV [--configs 11000000] [--rounds 10] [--fast auto|on|off] [--cache DIR]

Separate processes on a shared virtual machine drift by 5-10 % between runs (docs/benchmarks-history.md): a change worth
3 % is only seen when both versions run in turn in one process, on the same pages and the same phase of the
machine. The revision's package is copied out of git (`git archive`) into a temporary folder as `costmodel_ab`,
its own imports renamed, beside the catalogue folders of that revision, and imported next to this tree's.

The two packages' numba kernels share numba's registry of overloads, so both compile into one cache of their own
(`--cache`, default a temporary folder removed at exit): a first run compiles both, 3-7 min. With `--cache`,
the revision's copy is kept there too (rev-<hash>/: numba keys its cache on the kernels' paths), so the next run
against the same revision starts in seconds. Pin it to one core (`taskset -c 0`) on a quiet machine.
"""
from __future__ import annotations

import argparse
import gc
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = "costmodel_ab"
# the folders beside the package that the catalogue reads (spec/catalog.builtin_root: the package's parent in a
# checkout), as pyproject.toml's wheel force-include lists them
CATALOGUE = ("hardware", "models", "formats", "calibration", "data")


def _refuse(message: str) -> None:
    print(f"bench_ab: {message}", file=sys.stderr)
    raise SystemExit(2)


def commit_of(rev: str) -> str:
    """The full hash of `rev`; exits with status 2 for a revision git does not know."""
    known = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    if known.returncode != 0:
        _refuse(f"revision {rev!r} is not a commit of {ROOT} (try HEAD~1 or a hash from git log)")
    return known.stdout.strip()


def export(rev: str, into: Path) -> Path:
    """The package at `rev` as into/costmodel_ab (its `costmodel` imports and names renamed), with the catalogue
    folders of that revision beside it."""
    present = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", rev], capture_output=True,
                             text=True, check=True).stdout.split()
    paths = ["costmodel", *(p for p in CATALOGUE if p in present)]
    blob = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, *paths], capture_output=True,
                          check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    pkg = into / NAME
    (into / "costmodel").rename(pkg)
    word = re.compile(r"\bcostmodel\b(?=[.\s,)\"'])")  # the package's name, not COSTMODEL_* or costmodel-out
    for py in pkg.rglob("*.py"):
        text = py.read_text(encoding="utf-8")
        py.write_text(word.sub(NAME, text), encoding="utf-8")
    return pkg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rev", help="git revision to compare against (e.g. HEAD~1)")
    p.add_argument("--configs", type=int, default=11_000_000, help="about this many configurations (bench_sweep's grid)")
    p.add_argument("--rounds", type=int, default=10, help="timed sweeps of each version, alternating")
    p.add_argument("--fast", choices=("auto", "on", "off"), default="auto",
                   help="the [fast] kernels: as a sweep decides, at any size, never (COSTMODEL_FAST=0)")
    p.add_argument("--cache", help="numba cache folder for both versions (default: a temporary one, removed)")
    a = p.parse_args()
    if a.configs < 1 or a.rounds < 1:
        _refuse(f"--configs {a.configs} and --rounds {a.rounds}: expected 1 or more")
    commit = commit_of(a.rev)
    tmp = Path(tempfile.mkdtemp(prefix="costmodel-ab-"))
    try:
        os.environ["COSTMODEL_CACHE"] = a.cache or str(tmp / "cache")  # before either package loads numba
        os.environ["COSTMODEL_HOME"] = str(tmp / "home")  # an empty user catalogue for both: the same entries
        if a.fast == "off":
            os.environ["COSTMODEL_FAST"] = "0"
        # numba keys its cache on the kernels' file paths: with --cache the revision's copy stays at one path
        base = Path(a.cache) / f"rev-{commit}" if a.cache else tmp / "rev"
        if not base.is_dir():  # exported beside it, then renamed: never a half-made copy at that path
            base.parent.mkdir(parents=True, exist_ok=True)
            part = Path(tempfile.mkdtemp(prefix="rev-part-", dir=base.parent))
            export(commit, part)
            part.rename(base)
        sys.path.insert(0, str(base))
        sys.path.insert(0, str(ROOT))
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import importlib

        from bench_sweep import axes_for

        runs = {}
        for label, name in (("base", NAME), ("this", "costmodel")):
            grid = importlib.import_module(f"{name}.sweeps.grid")
            if a.fast == "on":
                grid.FAST_MIN_CONFIGS = 0
            runs[label] = importlib.import_module(f"{name}.sweeps.sweep").sweep
        axes = axes_for(a.configs)
        for label, run in runs.items():  # warm-up: imports, catalogue, compiling where the cache is empty
            t = time.perf_counter()
            n = len(run(**axes))
            print(f"{label}: first sweep {time.perf_counter() - t:.1f} s (compiles where the cache is empty)")
        times = {"base": [], "this": []}
        for i in range(a.rounds):
            order = ("base", "this") if i % 2 == 0 else ("this", "base")
            for label in order:
                gc.collect()
                t = time.perf_counter()
                result = runs[label](**axes)
                times[label].append(time.perf_counter() - t)
                del result
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        for k, v in times.items():
            print(f"{k} ({a.rev if k == 'base' else 'this tree'}): {' '.join(f'{x:.3f}' for x in v)} s; median "
                  f"{med[k]:.3f} s = {n / med[k]:,.0f} configurations/s")
        pairs = [b / t for b, t in zip(times["base"], times["this"])]
        print(f"{n:,} configurations, {a.rounds} rounds: this tree {med['base'] / med['this']:.3f}x the base's rate "
              f"(medians); pairs {' '.join(f'{x:.3f}' for x in pairs)}; faster in {sum(x > 1 for x in pairs)} of "
              f"{len(pairs)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
