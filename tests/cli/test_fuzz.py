"""Hostile and careless input (hypothesis over the CLI's options and small crafted files): a bad value
exits non-zero with one line on stderr and no traceback; nothing prints NaN or infinity; every call
finishes within a bound."""
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HOSTILE = ["nan", "inf", "-inf", "-1", "0", "1e309", "abc", "", "a,,b", "99999999999", "-0", "0.5", "1", "2",
           "1e-9", "max", " ", "h100,", ",", "=cmd|' /C calc'!A0", "../../etc/passwd", "\x00"]
TEMPLATES = [
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--prompt", "{}", "--gen", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--tp", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--mem-fraction", "{}", "--max-model-len", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--grid-gco2-per-kwh", "{}", "--output-reduction", "{}"),
    ("estimate", "{}", "--hw", "h100", "--fmt", "{}"),
    ("explain", "llama-3.1-8b", "--hw", "h100", "--context", "{}"),
    ("tts", "--p", "{}", "--eps", "{}"),
    ("tts", "--p", "0.3", "--false-positive", "{}", "--penalty", "{}"),
    ("tts", "--p", "0.3", "--n-max", "{}"),
    ("specdec", "--target", "llama-3.1-8b", "--draft", "llama-3.2-1b", "--hw", "h100", "--alpha", "{}", "--gamma", "{}"),
    ("cost-of-pass", "--task", "mmlu", "--candidates", "{}"),
    ("cost-of-pass", "--task", "mmlu", "--candidates", "llama-3.1-8b@h100:fp8", "--price", "energy",
     "--usd-per-kwh", "{}"),
    ("idealized", "llama-3.1-8b", "--prompt", "{}", "--gen", "{}"),
    ("sweep", "--models", "{}", "--hw", "h100", "--batch", "{}"),
    ("sweep", "--models", "llama-3.1-8b", "--hw", "h100", "--tp", "{}", "--prompt", "{}"),
    ("sweep", "--models", "llama-3.1-8b", "--hw", "h100", "--workers", "{}"),
    ("pareto", "--models", "llama-3.1-8b", "--hw", "h100", "--objectives", "{}"),
    ("curve", "llama-3.1-8b", "--hw", "{}", "--fmt", "fp8"),
    ("formula", "llama-3.1-8b", "--hw", "h100", "--context", "{}"),
    ("plan", "llama-3.1-8b", "--qps", "{}", "--prompt", "500", "--gen", "100", "--slo-ttft", "{}", "--candidates", "h100"),
    ("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "500", "--gen", "100", "--slo-ttft", "1", "--candidates", "{}",
     "--tp", "{}"),
    ("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "500", "--gen", "100", "--slo-ttft", "1", "--candidates", "h100",
     "--price", "own", "--years", "{}", "--pue", "{}"),
    ("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "500", "--gen", "100", "--slo-ttft", "1", "--candidates", "h100",
     "--price-per-hour", "{}"),
    ("whatif", "llama-3.1-8b", "--qps", "5", "--prompt", "500", "--gen", "100", "--slo-ttft", "1", "--candidates", "h100",
     "--vary", "qps={}"),
    ("validate", "--engine", "{}"),
    ("serve-curve", "llama-3.1-8b", "--hw", "h100", "--concurrency", "{}", "--prompt", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "{}", "--request-rate", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "2", "--prompt-dist", "{}", "--gen-dist", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "2", "--disagg", "{}", "--kv-link", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "2", "--prefix-hit", "0.5", "--prefix-tokens", "{}",
     "--kv-offload", "{}"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "{}", "--turns", "{}"),
    ("plan", "llama-3.1-8b", "--qps", "{}", "--prompt", "500", "--gen", "100", "--slo-ttft", "1", "--candidates", "h100",
     "--tp", "1", "--disagg", "{}"),
    ("show", "{}"),
    ("list", "{}"),
]
NUMBER_WORD = re.compile(r"(?<![A-Za-z])(nan|inf|infinity)(?![A-Za-z])", re.I)


def _check(run_cli, args):
    start = time.perf_counter()
    code, out, err = run_cli(*args)
    elapsed = time.perf_counter() - start
    assert elapsed < 30, (args, elapsed)
    assert "Traceback" not in err and "Traceback" not in out, (args, err)
    if code == 2:  # bad input: one line
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("costmodel: error:"), (args, err)
    elif code == 1:  # a valid question without an answer: only plan says so (and why)
        assert args[0] in ("plan", "whatif") and "no deployment meets the SLOs" in err, (args, err)
    else:
        assert code == 0, (args, code, err)
        assert not NUMBER_WORD.search(out), (args, out[:400])
    return code


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(template=st.sampled_from(TEMPLATES), values=st.lists(st.sampled_from(HOSTILE), min_size=2, max_size=2))
def test_hostile_options(run_cli, tmp_path_factory, template, values):
    it = iter(values)
    args = [next(it) if a == "{}" else a for a in template]
    _check(run_cli, args)


@pytest.mark.parametrize("args", [
    ("tts", "--p", "0.3", "--eps", "2"), ("tts", "--p", "0.3", "--penalty", "nan", "--false-positive", "0.1"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--grid-gco2-per-kwh", "nan"),
    ("estimate", "llama-3.1-8b", "--hw", "h100", "--prompt", "0", "--gen", "0"),
    ("validate", "--engine", "bogus"), ("sweep", "--models", "a,,b"),
    ("cost-of-pass", "--task", "mmlu", "--candidates", "llama-3.1-8b@h100"),
    ("plan", "llama-3.1-8b", "--qps", "nan", "--prompt", "5", "--gen", "5", "--slo-ttft", "1", "--candidates", "h100"),
    ("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "5", "--gen", "5", "--slo-ttft", "1", "--candidates", "h100",
     "--years", "0", "--price", "own"),
    ("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "5", "--gen", "5", "--slo-ttft", "1", "--candidates", "h100",
     "--tp", "abc"),
    ("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "5", "--gen", "5", "--slo-ttft", "1", "--candidates", "nosuch"),
    ("whatif", "llama-3.1-8b", "--qps", "5", "--prompt", "5", "--gen", "5", "--slo-ttft", "1", "--candidates", "h100",
     "--vary", "qps=10,abc"),
    ("whatif", "llama-3.1-8b", "--qps", "5", "--prompt", "5", "--gen", "5", "--slo-ttft", "1", "--candidates", "h100",
     "--vary", "candidates=h100|nosuch"),
    ("tts", "--p", "0.3", "--n-max", "1000000000"), ("sweep", "--models", "llama-3.1-8b", "--workers", "-1"),
    ("profile", "--model", "", "--quick"), ("cost-of-pass", "--task", "mmlu", "--candidates",
                                             "llama-3.1-8b@h100:fp8", "--price", "energy", "--usd-per-kwh", "inf"),
    ("sweep", "--models", "llama-3.1-8b", "--hw", "h100", "--scheduler", "not an address"),
])
def test_listed_bad_inputs_fail_in_one_line(run_cli, args):
    assert _check(run_cli, args) == 2


def test_writes_refuse_overwrite_and_the_package(run_cli, tmp_path):
    out = tmp_path / "s.csv"
    assert _check(run_cli, ("sweep", "--models", "llama-3.1-8b", "--hw", "h100", "--out", str(out))) == 0
    assert _check(run_cli, ("sweep", "--models", "llama-3.1-8b", "--hw", "h100", "--out", str(out))) == 2
    assert _check(run_cli, ("sweep", "--models", "llama-3.1-8b", "--hw", "h100", "--out", str(out), "--force")) == 0
    import costmodel

    pkg = costmodel.__file__.rsplit("/", 1)[0]
    assert _check(run_cli, ("calibrate", "x.csv", "--out", pkg)) == 2
    for bad in (str(tmp_path / "nope" / "p.png"), str(tmp_path / "p.txt"), str(tmp_path)):
        assert _check(run_cli, ("estimate", "llama-3.1-8b", "--hw", "h100", "--plot", bad)) == 2
    assert not list(tmp_path.glob(".*part*"))  # no temporary file left behind


def test_csv_cells_cannot_become_formulas(run_cli, tmp_path, user_catalog):
    from tests.conftest import DATA

    (user_catalog / "models" / "evil.yaml").write_text((DATA / "tiny.yaml").read_text().replace("id: tiny", "id: '=1+2'"))
    code, out, err = run_cli("estimate", "=1+2", "--hw", "h100", "--csv")
    assert code == 0, err
    assert ",'=1+2," in out or out.splitlines()[1].startswith("'=1+2")
    s = tmp_path / "s.csv"
    assert _check(run_cli, ("sweep", "--models", "=1+2", "--hw", "h100", "--out", str(s))) == 0
    assert "'=1+2" in s.read_text() and "\n=1+2" not in s.read_text()


def test_yaml_bombs_and_bad_encodings_are_refused(run_cli, user_catalog):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    lines.append("devices:\n  - id: laugh\n    x: *i")
    (user_catalog / "hardware" / "bomb.yaml").write_text("\n".join(lines) + "\n")
    for args in (("list", "hardware"), ("show", "h100")):
        code = _check(run_cli, args)
        assert code == 2
    (user_catalog / "hardware" / "bomb.yaml").write_bytes("devices: []\n".encode("utf-16"))
    assert _check(run_cli, ("list", "hardware")) == 2
