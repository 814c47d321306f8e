"""The notebooks are stored executed (their figures and numbers readable without running them) and
the tests run them again, so they never rot: every cell runs, and every number a conclusion quotes
is one the fresh run prints."""
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))

# a number as prose quotes it (1,979 / 0.846 / 20), not one inside a name (llama-3.1-8b, B200, q4_0, fp8)
NUMBER = re.compile(r"(?<![\w.\-])\d[\d,]*(?:\.\d+)?(?![\w])")


def _value(token: str) -> float:
    return float(token.replace(",", ""))


def _decimals(token: str) -> int:
    return len(token.split(".")[1]) if "." in token else 0


def printed_text(nb) -> str:
    """What the code cells print or show as text (streams and text results)."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o.get("text", ""))
            elif o.get("output_type") in ("execute_result", "display_data"):
                out.append(o.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


def conclusions(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.lstrip().startswith("## Conclusion"))


def unprinted_numbers(conclusion: str, printed: str) -> list[str]:
    """Numbers quoted in the conclusion that no printed number equals at the precision quoted."""
    values = [_value(t) for t in NUMBER.findall(printed)]
    return [t for t in NUMBER.findall(conclusion)
            if not any(round(v, _decimals(t)) == _value(t) for v in values)]


def test_number_matching():
    printed = "cheapest: $0.846 per million tokens at TPOT 43.397 ms; 1,979 TFLOP/s; llama-3.1-8b q4_0 B200"
    assert unprinted_numbers("$0.846, 43.4 ms, 1,979 TFLOP/s on llama-3.1-8b", printed) == []
    assert unprinted_numbers("TPOT 43.3 ms", printed) == ["43.3"]
    assert unprinted_numbers("3.1 and 200", printed) == ["3.1", "200"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_its_conclusion_quotes_what_it_prints(path, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    # stored executed: every code cell has run, in order, without errors, and the figures are in the file
    assert all(c.get("execution_count") for c in code), "store the notebook executed (with its outputs)"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "execute it top to bottom"
    stored = [o for c in code for o in c.outputs]
    assert not [o for o in stored if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in stored), "no figure stored"
    conclusion = conclusions(nb)
    assert conclusion, "a '## Conclusion' cell states the answer"
    assert NUMBER.search(conclusion), "the conclusion quotes numbers"
    assert not unprinted_numbers(conclusion, printed_text(nb)), "the stored outputs do not print what the conclusion says"

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temporary folders (the figures') in the test's
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    missing = unprinted_numbers(conclusion, printed_text(nb))
    assert not missing, (f"{path.name}: the conclusion quotes {missing}, which the notebook no longer prints; "
                         "re-execute it and update the conclusion")


def test_there_are_five_notebooks():
    assert [p.stem for p in NOTEBOOKS] == ["01_quantization_pareto", "02_edge_devices", "03_test_time_scaling",
                                           "04_capacity_planning", "05_training_cost"]
