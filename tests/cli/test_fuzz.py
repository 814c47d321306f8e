"""Hostile and careless input (hypothesis over the CLI's options and small crafted files): a bad value
exits non-zero with one line on stderr and no traceback; nothing prints NaN or infinity; every call
finishes within a bound."""
import os
import re
import time

import numpy as np
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


def test_the_python_sweep_to_file_refuses_to_overwrite(tmp_path):
    """costmodel.sweep_to_file replaced an existing file without a word; it now asks for force=True, as the CLI
    asks for --force, and leaves the file as it was."""
    import costmodel
    from costmodel.errors import CostModelError

    out = tmp_path / "keep.csv"
    out.write_text("precious\n")
    with pytest.raises(CostModelError, match=r"keep.csv: the file exists; pass force=True \(--force\)"):
        costmodel.sweep_to_file(str(out), models=["llama-3.1-8b"], hw=["h100"])
    assert out.read_text() == "precious\n"
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(CostModelError, match="d.csv: is a folder"):
        costmodel.sweep_to_file(str(tmp_path / "d.csv"), models=["llama-3.1-8b"], hw=["h100"])
    assert costmodel.sweep_to_file(str(out), force=True, models=["llama-3.1-8b"], hw=["h100"]) == 1
    assert out.read_text().startswith("model,")


def test_a_folder_that_takes_no_file_is_a_clear_error(run_cli, tmp_path):
    """A write where the folder cannot take a file (missing; /proc, which the permission check passes for root)
    was an internal error (exit 70, FileNotFoundError of the temporary file); it is exit 2 naming the path."""
    from costmodel.errors import CostModelError
    from costmodel.spec.files import atomic_output

    with pytest.raises(CostModelError, match=r"x.csv: cannot write a file there \(No such file or directory\)"):
        with atomic_output(tmp_path / "missing" / "x.csv"):
            pass
    if not os.path.isdir("/proc/self"):
        return
    for args in (("sweep", "--models", "llama-3.1-8b", "--hw", "h100", "--out", "/proc/x.csv"),
                 ("estimate", "llama-3.1-8b", "--hw", "h100", "--plot", "/proc/x.png")):
        code, _, err = run_cli(*args)
        assert code == 2 and "/proc/x." in err and "cannot write a file there" in err, err


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


def test_a_second_readers_findings_are_refused_or_named(run_cli, tmp_path):
    """A hostile pass found these answered without a word, with inf, or as an internal error."""
    import costmodel
    from costmodel.errors import CostModelError

    # sweep --gen 0 wrote inf into the CSV: a per-output-token figure of no output is an empty cell
    out = tmp_path / "g0.csv"
    assert run_cli("sweep", "--gen", "0", "--out", str(out))[0] == 0
    header, row = out.read_text().splitlines()
    cells = dict(zip(header.split(","), row.split(",")))
    assert cells["energy_j_per_token"] == cells["usd_per_million_tokens"] == "" and "inf" not in row
    assert np.isinf(costmodel.sweep(gen=[0])["usd_per_million_tokens"]).all()  # in memory: the value itself
    # sweep --prompt 0 printed a TTFT of 0 where estimate refuses the same input
    for cmd in ("sweep", "pareto"):
        code, _, err = run_cli(cmd, "--prompt", "0,128")
        assert code == 2 and "--prompt 0,128: a generated token needs at least one token before it" in err
    # pareto FILE ignored a sweep option given at its default value
    code, _, err = run_cli("pareto", str(out), "--models", "llama-3.1-8b", "--batch", "1")
    assert code == 2 and err.startswith("costmodel: error: --models, --batch: apply where pareto sweeps itself")
    # cost-of-pass called an unknown device or format "does not fit on 64 x h10"
    for cand, needle in (("deepseek-r1-distill-llama-8b@h10:bf16", "unknown hardware 'h10'; did you mean 'h100'?"),
                         ("deepseek-r1-distill-llama-8b@h100:fp7", "unknown format 'fp7'; did you mean 'fp8'?")):
        code, _, err = run_cli("cost-of-pass", "--task", "math500", "--candidates", cand)
        assert code == 2 and needle in err, err
    # the Python API raised AttributeError deep inside for None or a number
    for args, needle in (((None, "h100"), "model None: expected a catalogue id"),
                         (("llama-3.1-8b", 123), "--hw 123: expected a catalogue id"),
                         (("llama-3.1-8b", "h100", None), "--fmt None: expected a catalogue id")):
        with pytest.raises(CostModelError, match=needle):
            costmodel.estimate(*args)
    for kw, needle in ((dict(hw=[None]), "--hw None"), (dict(models=5), "--models 5"), (dict(workers=0), "--workers 0"),
                       (dict(workers=True), "--workers True")):
        with pytest.raises(CostModelError, match=needle):
            costmodel.sweep(**kw)
    # specdec at an acceptance where no γ pays said only "best γ: 1 (0.894x)"
    code, text, _ = run_cli("specdec", "--target", "llama-3.1-8b", "--draft", "llama-3.2-1b", "--hw", "h100",
                            "--alpha", "0")
    assert code == 0 and "below 1x at every γ: at this acceptance the draft does not pay" in text


def test_a_second_readers_findings_under_load_and_in_plans(run_cli, tmp_path):
    """A second hostile pass found these: a repeated plan candidate listed twice, --limit ignored by --json, inf
    written into CSV for unbounded latencies, a misleading 'needs 17 GiB' where the KV pool (--max-model-len)
    binds under a load, and decode formulas for an encoder."""
    import csv
    import io
    import json

    base = ("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "1000", "--gen", "200", "--slo-ttft", "1",
            "--slo-tpot", "0.05", "--fmt", "fp8,fp8", "--json")
    code, text, err = run_cli(*base, "--candidates", "h100,h100-sxm,l40s")
    assert code == 0, err
    rows = json.loads(text)["deployments"]
    keys = [(r["hardware"], r["tp"], r["layout"], r["format"]) for r in rows]
    assert len(keys) == len(set(keys)) and {k[0] for k in keys} <= {"h100-sxm", "l40s"}
    assert len(json.loads(run_cli(*base, "--candidates", "h100,l40s", "--limit", "2")[1])["deployments"]) == 2
    code, text, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--request-rate", "640", "--csv")
    row = next(csv.DictReader(io.StringIO(text)))
    assert code == 0 and row["ttft_s"] == "" and "inf" not in text  # --json null, the table "unbounded"
    out = tmp_path / "loads.csv"
    assert run_cli("sweep", "--hw", "h100", "--fmt", "fp8", "--request-rate", "1,640", "--out", str(out))[0] == 0
    assert "inf" not in out.read_text() and len(out.read_text().splitlines()) == 3
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--max-model-len", "10000000",
                           "--concurrency", "8")
    assert code == 2 and "the KV cache pool of 1 x h100-sxm (1,030,816 tokens) holds 0.103 of one sequence" in err
    code, text, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--max-model-len", "600000")
    assert code == 0 and "--max-model-len 600,000 exceeds llama-3.1-8b's max_position_embeddings (131,072)" in err + text
    code, _, err = run_cli("formula", "bert-base", "--hw", "h100")
    assert code == 2 and "bert-base is an encoder: it generates no tokens, so it has no decode forms" in err


def test_a_third_readers_findings_on_specs_paths_and_the_api(run_cli, tmp_path, monkeypatch):
    """A third hostile pass found: COSTMODEL_PATH entries that are a file, missing, or hold no catalogue sub-folder
    ignored in silence (a user device in them then 'unknown'); load_model(None) and load_hardware(5) raised
    AttributeError, Estimate.metric('ttft') a bare KeyError, test_time_scaling('0.3') a TypeError, and
    validate('file.csv') read the path's characters as files; --gen 0 printed a TPOT and a decode rate."""
    import json

    import costmodel
    from costmodel.errors import CostModelError

    f = tmp_path / "env.sh"
    f.write_text("x\n")
    (tmp_path / "flat").mkdir()
    for entry, needle in ((f, "a file"), (tmp_path / "none", "no such folder"), (tmp_path / "flat", "holds none of")):
        monkeypatch.setenv("COSTMODEL_PATH", str(entry))
        code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100")
        assert code == 2 and f"COSTMODEL_PATH entry {entry}: {needle}" in err, err
    monkeypatch.delenv("COSTMODEL_PATH")
    for call, needle in ((lambda: costmodel.load_model(None), "models None: expected a catalogue id"),
                         (lambda: costmodel.load_hardware(5), "hardware 5: expected a catalogue id"),
                         (lambda: costmodel.estimate("llama-3.1-8b", "h100").metric("ttft"),
                          "unknown metric 'ttft'; did you mean 'ttft_s'"),
                         (lambda: costmodel.test_time_scaling("0.3"), "--p '0.3': expected a probability")):
        with pytest.raises(CostModelError, match=needle):
            call()
    from costmodel.calibration.measurements import shipped_measurements

    shipped = str(shipped_measurements())  # one path as a str is one file (installed or in a checkout)
    assert costmodel.validate(shipped)["scored"] == costmodel.validate([shipped])["scored"] > 0
    code, text, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--gen", "0", "--json")
    d = json.loads(text)
    assert code == 0 and d["tpot_s"] is None and d["decode_tokens_per_s"] is None and "tpot_s" not in d["interval"]


def test_a_tiny_memory_fraction_is_named_not_sharded():
    """--mem-fraction 0.000001 said "it needs about 191868 x h100-sxm (try --tp 8 --pp 23984)" (TRT-LLM) and
    advised 23,984 pipeline stages under vLLM: the option is named, no absurd layout offered."""
    import costmodel
    from costmodel.errors import DoesNotFitError
    from costmodel.estimate import require_fit

    for engine, needle in (("trt-llm", "memory fraction 1e-06 (--mem-fraction) leaves a KV cache pool of 0 tokens"),
                           ("vllm", "the engine's memory fraction 1e-06 leaves it (--mem-fraction); raise --mem-fraction")):
        e = costmodel.estimate("llama-3.1-8b", "h100", mem_fraction=1e-6, engine=engine)
        with pytest.raises(DoesNotFitError) as info:
            require_fit(e)
        assert needle in str(info.value) and "--pp" not in str(info.value), str(info.value)
