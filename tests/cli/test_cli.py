"""The CLI: the headline command, every output mode, and every class of bad input."""
import json
import subprocess
import sys

import pytest

HEADLINE = ("estimate", "llama-70b", "--hw", "h100", "--fmt", "w4a16")
JSON_KEYS = {"ttft_s", "tpot_s", "prefill_tokens_per_s", "decode_tokens_per_s", "throughput_tokens_per_s",
             "e2e_latency_s", "energy_j_per_token", "usd_per_million_tokens", "batch", "memory"}


def test_headline_command_table(run_cli):
    code, out, err = run_cli(*HEADLINE)
    assert code == 0, err
    assert "Time to first token" in out and "llama-3.1-70b" in out
    assert "'llama-70b' resolved to 'llama-3.1-70b'" in err and "'h100' resolved to 'h100-sxm'" in err


def test_estimate_json(run_cli):
    code, out, _ = run_cli(*HEADLINE, "--json")
    assert code == 0
    d = json.loads(out)
    assert JSON_KEYS <= set(d)
    assert {"weights_bytes", "kv_cache_bytes", "total_bytes", "capacity_bytes", "fits"} <= set(d["memory"])
    assert d["memory"]["fits"] is True and d["tpot_s"] > 0 and d["batch"] == 1
    # 70.6B params in ~4.16-bit weights + 16-bit embeddings/head: about 40 GB
    assert 35e9 < d["memory"]["weights_bytes"] < 45e9


def test_estimate_csv(run_cli):
    import csv
    import io

    code, out, _ = run_cli(*HEADLINE, "--csv")
    header, row = list(csv.reader(io.StringIO(out)))
    assert "tpot_s" in header and "memory.weights_bytes" in header and "interval.tpot_s.low" in header
    assert len(header) == len(row)
    assert float(row[header.index("tpot_s")]) > 0


def test_batch_max(run_cli):
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h200", "--fmt", "fp8", "--batch", "max",
                           "--prompt", "2000", "--gen", "256", "--json")
    d = json.loads(out)
    assert code == 0 and d["batch"] == d["max_batch"] > 100 and d["memory"]["fits"]


def test_kv_fmt_override_halves_kv(run_cli):
    _, a, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "bf16", "--batch", "8", "--json")
    _, b, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "bf16", "--kv-fmt", "fp8", "--batch", "8", "--json")
    assert json.loads(b)["memory"]["kv_cache_bytes"] == pytest.approx(json.loads(a)["memory"]["kv_cache_bytes"] / 2)


@pytest.mark.parametrize("kind,needle", [("hardware", "h100-sxm"), ("models", "deepseek-v3"), ("formats", "nvfp4")])
def test_list(run_cli, kind, needle):
    code, out, _ = run_cli("list", kind)
    assert code == 0 and needle in out
    code, out, _ = run_cli("list", kind, "--json")
    assert any(r["id"] == needle for r in json.loads(out))


@pytest.mark.parametrize("name,needle", [("h100", "nvidia.com"), ("llama-3.1-8b", "huggingface.co"),
                                         ("nvfp4", "NVFP4")])
def test_show_gives_sources(run_cli, name, needle):
    code, out, _ = run_cli("show", name, "--json")
    assert code == 0
    d = json.loads(out)
    assert any(needle in (r["source"] or "") for r in d["fields"])


def test_explain_and_roofline_plot(run_cli, tmp_path):
    png = tmp_path / "roof.png"
    code, out, err = run_cli("explain", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--plot", str(png))
    assert code == 0, err
    assert "mlp_up" in out and "memory" in out
    assert png.stat().st_size > 10_000
    code, out, _ = run_cli("explain", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--json")
    rows = json.loads(out)
    decode = [r for r in rows if r["phase"] == "decode"]
    assert sum(r["share"] for r in decode) == pytest.approx(1.0)


@pytest.mark.parametrize("args,needle", [
    (("estimate", "llama-70b", "--hw", "h1000"), "did you mean 'h100'"),
    (("estimate", "llama-3.1-7b", "--hw", "h100"), "did you mean"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "nvfp5"), "did you mean 'nvfp4'"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "0"), "--batch 0"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--prompt", "-5"), "--prompt -5"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "lots"), "--batch lots: expected an integer >= 1 or 'max'"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--tp", "3"), "must divide the 32 attention heads"),
    (("estimate", "llama-3.1-8b", "--hw", "m2-pro", "--tp", "2"), "no device interconnect"),
    (("estimate", "llama-3.1-405b", "--hw", "h100", "--fmt", "bf16"), "needs about 11 x h100-sxm"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "nvfp4", "--native-only"), "nvfp4 needs fp4"),
    (("show", "nosuchthing"), "unknown id"),
])
def test_bad_input_one_line_exit_2(run_cli, args, needle):
    code, out, err = run_cli(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_malformed_user_yaml_is_one_line(run_cli, user_catalog):
    (user_catalog / "hardware" / "broken.yaml").write_text("devices: [ {id: x, name: \n")
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100")
    assert code == 2 and "broken.yaml" in err and "malformed YAML" in err
    assert len(err.strip().splitlines()) == 1


def test_debug_shows_traceback(run_cli):
    with pytest.raises(Exception) as info:
        run_cli("--debug", "estimate", "llama-70b", "--hw", "h1000")
    assert "h1000" in str(info.value)


def test_help_and_estimate_do_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from costmodel.cli.main import main\n"
        "try:\n    main(['estimate', 'llama-8b', '--hw', 'h100', '--fmt', 'fp8', '--json'])\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('matplotlib', 'scipy', 'sympy') if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().endswith("HEAVY="), done.stderr
    done = subprocess.run([sys.executable, "-m", "costmodel", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "estimate" in done.stdout
