"""The README's example outputs are what the commands print today (docs/readme_examples.py regenerates them)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_examples_are_current():
    done = subprocess.run([sys.executable, str(ROOT / "docs" / "readme_examples.py"), "--check"], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, ("README examples are stale; run python docs/readme_examples.py\n" + done.stdout
                                  + done.stderr)
