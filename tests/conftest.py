import os
import shutil
import tempfile
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


# the session's parse, index and compiled-kernel caches (collection included: some parameters list the catalogue),
# never the user's ~/.cache/costmodel; removed when the session ends. Under pytest-xdist the controller makes the
# folder and its workers, which inherit its environment, share it: a kernel one worker compiled the other loads.
_WORKER = "PYTEST_XDIST_WORKER" in os.environ and "COSTMODEL_TEST_CACHE" in os.environ
_CACHE = os.environ["COSTMODEL_TEST_CACHE"] if _WORKER else tempfile.mkdtemp(prefix="costmodel-test-cache-")
os.environ["COSTMODEL_TEST_CACHE"] = os.environ["COSTMODEL_CACHE"] = _CACHE


def pytest_sessionfinish(session, exitstatus):
    if not _WORKER:
        shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_user_catalog(tmp_path_factory, monkeypatch):
    """Tests never read or write the real user catalogue (~/.config/costmodel), and start without a
    COSTMODEL_PATH: a shell's, or one a calibration added to the process (calibration.run.env_with), is
    undone after each test (set, then deleted, so that monkeypatch restores it)."""
    monkeypatch.setenv("COSTMODEL_HOME", str(tmp_path_factory.mktemp("costmodel-home")))
    monkeypatch.setenv("COSTMODEL_PATH", "")
    monkeypatch.delenv("COSTMODEL_PATH")


@pytest.fixture
def run_cli(capsys):
    """Run `costmodel ARGS...` in-process; returns (exit code, stdout, stderr)."""
    from costmodel.cli.main import main

    def run(*args):
        code = 0
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def user_catalog(tmp_path, monkeypatch):
    """A COSTMODEL_PATH folder with hardware/ and models/ sub-folders for user specs."""
    for sub in ("hardware", "models", "formats", "calibration"):
        (tmp_path / sub).mkdir()
    monkeypatch.setenv("COSTMODEL_PATH", str(tmp_path))
    return tmp_path


def load_data_tool(name: str):
    """A script of data/tools/ as a module (they are run as scripts, not installed)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "data" / "tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
