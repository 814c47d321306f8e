"""The CLI's edge: every option checked before a command runs, with the option, the value and
what was expected in one line (a CostModelError, exit 2).

Rules are by flag, so an option means the same in every command: numbers are finite and in
range, comma lists have no empty element, plot and output paths can be written (an existing file
only with --force, never inside the installed package), input files exist.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from costmodel.errors import CostModelError, not_a_file


class OptionError(CostModelError):
    """A command-line value out of range or of the wrong kind."""


# flag -> (low, high, low inclusive, high inclusive); None = unbounded
RANGES = {
    "--qps": (0, None, False, True), "--slo-ttft": (0, None, False, True), "--slo-tpot": (0, None, False, True),
    "--years": (0, 100, False, True), "--electricity": (0, None, True, True), "--pue": (1, 10, True, True),
    "--hosting-usd-per-device-year": (0, None, True, True), "--usd-per-kwh": (0, None, True, True),
    "--grid-gco2-per-kwh": (0, None, True, True), "--output-reduction": (0, 1, True, False),
    "--mem-fraction": (0, 1, False, True), "--eps": (0, 1, False, True), "--p": (0, 1, False, False),
    "--fmax": (0, 1, False, True), "--false-positive": (0, 1, True, True), "--penalty": (0, None, True, True),
    "--alpha": (0, 1, True, False), "--gamma": (1, 64, True, True), "--n-max": (1, 100_000, True, True),
    "--tokens-in": (0, 10_000_000, True, True), "--tokens-out": (1, 10_000_000, True, True),
    "--prompt": (0, 10_000_000, True, True), "--gen": (0, 10_000_000, True, True),
    "--context": (0, 100_000_000, True, True), "--tp": (1, 4096, True, True), "--pp": (1, 1024, True, True),
    "--devices": (1, 1_000_000, True, True), "--limit": (1, 10_000, True, True), "--worst": (0, 100_000, True, True),
    "--workers": (1, 1024, True, True), "--rows": (1, 100_000_000, True, True),
    "--kv-block-size": (1, 1_000_000, True, True), "--max-model-len": (1, 100_000_000, True, True),
    "--tokens": (0, None, False, True), "--seq-len": (1, 100_000_000, True, True),
    "--global-batch": (1, 1_000_000_000, True, True), "--micro-batch": (1, 1_000_000, True, True),
    "--cp": (1, 4096, True, True), "--vpp": (1, 1024, True, True), "--ep": (1, 4096, True, True), "--zero": (0, 3, True, True),
    "--budget-gpu-hours": (0, None, False, True), "--budget-usd": (0, None, False, True),
}
LISTS = ("--models", "--hw", "--fmt", "--kv-fmt", "--candidates", "--engine", "--tp", "--batch", "--prompt", "--gen",
         "--budget", "--concurrency", "--request-rate", "--layouts")
PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def check_number(flag: str, value):
    """A finite number inside the flag's range."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(f"{flag} {value}: expected a finite number")
    rule = RANGES.get(flag)
    if rule:
        lo, hi, lo_in, hi_in = rule
        bad = ((lo is not None and (value < lo or (value == lo and not lo_in)))
               or (hi is not None and (value > hi or (value == hi and not hi_in))))
        if bad:
            left = "[" if lo_in else "("
            right = "]" if hi_in else ")"
            raise OptionError(f"{flag} {value}: expected a number in {left}{lo if lo is not None else '-inf'}, "
                              f"{hi if hi is not None else 'inf'}{right}")
    return value


def check_list(flag: str, value):
    """A comma-separated list without empty elements (`a,,b`)."""
    if isinstance(value, str) and "," in value and any(not p.strip() for p in value.split(",")):
        raise OptionError(f"{flag} {value!r}: an element of the comma-separated list is empty")
    return value


def package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def check_not_in_package(flag: str, path: Path, force: bool = False) -> None:
    """Never write into the installed package; into a checkout's shipped catalogue only with --force
    (maintainers regenerating calibration/fitted.yaml)."""
    from costmodel.spec.catalog import builtin_root

    p = path.resolve()
    pkg = package_dir()
    if p == pkg or pkg in p.parents:
        raise OptionError(f"{flag} {path}: refusing to write into the installed costmodel package")
    root = builtin_root().resolve()
    for sub in ("calibration", "hardware", "models", "formats", "data"):
        shipped = root / sub
        if (p == shipped or shipped in p.parents or p == root) and not force:
            raise OptionError(f"{flag} {path}: this is the shipped catalogue ({root}); pass another folder, or "
                              f"--force to replace shipped files")


def check_output_file(flag: str, value, suffixes: tuple, force: bool):
    """A file the command may create: a supported extension, an existing writable folder, and no
    existing file unless --force."""
    if not value:
        return value
    path = Path(value).expanduser()
    if path.suffix.lower() not in suffixes:
        raise OptionError(f"{flag} {value}: expected a file ending in {', '.join(suffixes)}")
    if path.is_dir():
        raise OptionError(f"{flag} {value}: is a folder; expected a file ending in {', '.join(suffixes)}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OptionError(f"{flag} {value}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise OptionError(f"{flag} {value}: the folder {folder} is not writable")
    if path.exists() and not force:
        raise OptionError(f"{flag} {value}: the file exists; pass --force to replace it")
    check_not_in_package(flag, path, force)
    return value


def check_output_dir(flag: str, value, force: bool = False):
    """A folder the command may create or write into (not a file, writable, not the package)."""
    if not value:
        return value
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise OptionError(f"{flag} {value}: is a file; expected a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK) or not _can_create_in(probe):
        raise OptionError(f"{flag} {value}: {probe} is not writable")
    check_not_in_package(flag, path, force)
    return value


def _can_create_in(folder: Path) -> bool:
    """A folder can be made in `folder` (a trial one, removed): os.access passes /proc for root, where mkdir fails
    after the command has done its work."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".costmodel-probe-"))
    except OSError:
        return False
    return True


def check_input_files(flag: str, values) -> list:
    """Each a readable file, none given twice (its rows would count twice: validate scored 52 of a 26-row file)."""
    seen: dict = {}
    for v in values:
        check_input_file(flag, v)
        key = os.path.realpath(os.path.expanduser(v))
        if key in seen:
            raise OptionError(f"{v}: given twice (as {seen[key]} too); give each file once")
        seen[key] = v
    return values


def check_input_file(flag: str, value):
    what = not_a_file(value) if value else ""
    if what:
        raise OptionError(f"{value}: {what}; expected a readable file" + (f" for {flag}" if flag else ""))
    return value


FORCE = False  # --force was given (the CLI strips it before the command parses its options)


def install(cmd, force: bool) -> None:
    """Attach the checks to every option of every sub-command of the click command `cmd`."""
    global FORCE
    FORCE = force
    stack = [cmd]
    while stack:
        c = stack.pop()
        stack.extend(getattr(c, "commands", {}).values())
        for p in c.params:
            flag = next((o for o in getattr(p, "opts", []) if o.startswith("--")), None)
            rule = _rule_for(c.name, p.name, flag, force)
            if rule is not None:
                p.callback = _chain(p.callback, rule)


def _rule_for(command: str, name: str, flag: str | None, force: bool):
    if name in ("plot",):
        return lambda v: check_output_file(flag, v, PLOT_SUFFIXES, force)
    if name == "out" and command == "sweep":
        return lambda v: check_output_file(flag, v, (".csv", ".parquet"), force)
    if name == "out" and command == "import-bench":
        return lambda v: check_output_file(flag, v, (".csv",), force)
    if name == "out" and command in ("profile", "calibrate", "calibrate-train"):
        return lambda v: check_output_dir(flag, v, force)
    if name in ("files", "sweep_file", "accuracy") or (name == "file" and command == "calibrate-train"):
        return lambda v: check_input_files(flag, v) if isinstance(v, (list, tuple)) else check_input_file(flag, v)
    if flag is None:
        return None
    if flag in LISTS:
        return lambda v: check_number(flag, check_list(flag, v))
    return lambda v: check_number(flag, v)


def on_command_line(ctx, name: str) -> bool | None:
    """Whether option `name` was given on the command line (True) or took its default (False); None where click
    cannot tell."""
    source = ctx.get_parameter_source(name) if hasattr(ctx, "get_parameter_source") else None
    return None if source is None else source.name == "COMMANDLINE"


def _given(ctx, param) -> bool:
    """The option's value came from the command line, not its default (an option may default to ''); so where
    click cannot tell."""
    return on_command_line(ctx, param.name) is not False


def _chain(previous, rule):
    def callback(ctx, param, value):
        if (value == "" or (isinstance(value, (list, tuple)) and "" in value)) and _given(ctx, param):  # read as absent
            flag = next((o for o in getattr(param, "opts", []) if o.startswith("--")), param.name)
            raise OptionError(f"{flag} '': empty; give a value or leave the option out")
        if previous is not None:
            value = previous(ctx, param, value)
        return rule(value)

    return callback
