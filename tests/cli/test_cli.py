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
    (("estimate", "llama-70b", "--hw", "h1OO"), "did you mean 'h100'"),  # letters for digits: no hint before
    (("estimate", "llama-70b", "--hw", "b2OO"), "did you mean 'b200'"),
    (("estimate", "llama-3.1-7b", "--hw", "h100"), "did you mean"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "nvfp5"), "did you mean 'nvfp4'"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "0"), "--batch 0"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--prompt", "-5"), "--prompt -5"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "lots"),
     "--batch lots: expected an integer from 1 to 10,000,000 or 'max'"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "1e30"), "--batch 1e30: expected an integer from 1 to"),
    # options that were silently dropped (a fuzzing review)
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--json", "--csv"), "--json and --csv: give one output format"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "4", "--plot", "m.png"), "--plot m.png: draws a"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--gen-dist", "uniform:0.5"), "--gen-dist uniform:0.5: applies under"),
    (("whatif", "llama-3.1-8b", "--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft", "1", "--candidates",
      "h100", "--vary", "qps=10,20", "--vary", "fmt=bf16|fp8"), "--vary given 2 times"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--tp", "3"), "must divide the 32 attention heads"),
    (("estimate", "llama-3.1-8b", "--hw", "m2-pro", "--tp", "2"), "no device interconnect"),
    (("estimate", "llama-3.1-405b", "--hw", "h100", "--fmt", "bf16"), "needs about 11 x h100-sxm"),
    # memory holds it, the engine's KV pool not one sequence of the max model length (it said 'need 22.7 GiB of 80
    # GiB ... try --tp 1')
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--max-model-len", "100000000"),
     "of one sequence at its longest (--max-model-len, or prompt + gen)"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "nvfp4", "--native-only"), "nvfp4 needs fp4"),
    # what binds is named (it said 'need 88.0 GiB of 80 GiB', '... try --tp 1' with one device in use)
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--engine", "vllm", "--mem-fraction", "0.1"),
     "the weights alone need 15.0 GiB per device, more than the 7.2 GiB of 80 GiB the engine's memory fraction 0.1 "
     "leaves it (--mem-fraction)"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--kv-block-size", "1000000"),
     "(each sequence's 640 tokens of KV round up to a whole 1,000,000-token block: --kv-block-size)"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "100000"), "sequences fit: lower --batch"),
    # a path that is not a regular file says what it is (it said 'no such file')
    (("estimate", "llama-3.1-8b", "--hw", "/dev/null"), "/dev/null: not a regular file (a device, pipe or socket)"),
    (("estimate", "llama-3.1-8b", "--hw", "/"), "/: a folder; expected a spec file"),
    (("pareto", "/dev/null"), "/dev/null: not a regular file"),
    # one 0 in both length lists is a configuration with nothing to run (the sweep printed it with 'fits yes')
    (("sweep", "--prompt", "0,512", "--gen", "0,128"), "--prompt 0,512 --gen 0,128: both list 0"),
    # options the load model ignored are refused under a load (a second fuzzing review)
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1", "--batch", "4"),
     "--batch 4: applies to a static batch, not under --concurrency/--request-rate: the load sets the batch"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "4", "--context", "100"), "--context 100: applies"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1", "--grid-gco2-per-kwh", "400"),
     "--grid-gco2-per-kwh 400: applies to a static batch"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1", "--kv-predict", "llama-3.2-1b"),
     "--kv-predict llama-3.2-1b: applies to a static batch"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1", "--output-reduction", "0.5"),
     "--output-reduction 0.5: applies"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1", "--fmt", "nvfp4", "--native-only"),
     "nvfp4 needs fp4"),
    # a maximum model length below the request (it sized the batch at 730 sequences of 640 tokens)
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "max", "--max-model-len", "1"),
     "--max-model-len 1: shorter than a request's 640 tokens"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "4", "--max-model-len", "100"),
     "--max-model-len 100: shorter than a mean request's 640 tokens"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--prompt", "0", "--gen", "1"),
     "--prompt 0 with --gen 1: a generated token needs at least one token or image before it"),
    # an option given twice (click kept the last one), an empty value (read as not given)
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "4", "--batch=8"), "--batch given 2 times"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--engine", ""), "--engine '': empty"),
    (("sweep", "--out", ""), "--out '': empty"),
    # a device without an interconnect is not told to shard (it said 'try --tp 8', which it then refused)
    (("estimate", "llama-3.1-70b", "--hw", "m2-pro"), "m2-pro-19c has no device interconnect to shard it over"),
    # more of the second fuzzing review: NaN for an encoder, no fit check, bounds, options that were never read
    (("idealized", "bert-base"), "bert-base is an encoder: an idealized runtime prices generated tokens"),
    (("idealized", "llama-3.1-405b", "--tp", "1"), "does not fit on a100-sxm-80gb"),
    (("tts", "--p", "0.3", "--model", "bert-base", "--hw", "h100"), "an attempt samples generated tokens"),
    (("tts", "--p", "0.3", "--model", "llama-3.1-8b", "--hw", "h100", "--gen", "0"), "--gen 0: an attempt samples"),
    (("tts", "--p", "0.3", "--mix", "-1:0.5,2:0.5", "--false-positive", "0.1", "--penalty", "1"), "--mix share -1.0"),
    (("tts", "--p", "0.3", "--mix", ":"), "--mix :: weighs the utility of --penalty"),
    (("vlm-tokens", "--text-tokens", "1e300"), "--text-tokens 1e+300: expected a number of tokens from 0 to 1e7"),
    (("sweep", "--num-prompts", "10"), "--num-prompts 10: applies to a sweep under load"),
    (("sweep", "--prompt-dist", "uniform:0.5"), "--prompt-dist uniform:0.5: applies to a sweep under load"),
    (("pareto", "--accuracy", "README.md"), "--accuracy README.md: gives the accuracies of --task; give --task too"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "2", "--disagg", "1p,1d", "--kv-link", "1e-300"),
     "--kv-link 1e-300: expected GB/s per device from 0.1"),
    (("profile", "--quick", "--out", "/proc/costmodel-profile"), "--out /proc/costmodel-profile: /proc is not writable"),
    (("serve-curve", "llama-3.1-8b", "--hw", "h100", "--concurrency", "1", "--request-rate", "1"), "not both"),
    (("plan", "llama-3.1-8b", "--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft", "1", "--candidates",
      "h100", "--years", "5"), "--years: apply to --price own"),
    (("plan", "llama-3.1-8b", "--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft", "1", "--candidates",
      "h100", "--price", "own", "--price-per-hour", "h100=1"), "--price-per-hour: applies to --price cloud"),
    (("plan", "llama-3.1-8b", "--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft", "1", "--candidates",
      "h100", "--price-per-hour", "b200=1"), "--price-per-hour b200: not among --candidates (h100-sxm)"),
    (("cost-of-pass", "--task", "mmlu", "--candidates", "llama-3.1-8b@h100:fp8", "--usd-per-kwh", "0.1"),
     "--usd-per-kwh 0.1: applies to --price energy"),
    (("tts", "--p", "0.3", "--hw", "h100"), "--hw/--fmt (h100): price the budgets of --model"),
    (("train-precision", "llama-3.1-8b", "--hw", "h100", "--devices", "8", "--budget-gpu-hours", "1e300"),
     "budget 1e+300 GPU-hours: expected a positive number up to 1e+12"),
    # a third fuzzing review
    (("validate", "data/measurements.csv", "./data/measurements.csv"), "./data/measurements.csv: given twice"),
    (("estimate", "llama-3.1-8b", "--hw", "h100", "--overlap-comm", "--no-overlap-comm"),
     "--no-overlap-comm / --overlap-comm given 2 times"),
    (("train", "llama-3.1-8b", "--hw", "h100", "--devices", "8", "--tokens", "1e12", "--limit", "3"),
     "--limit 3: the layouts --search shows; give --search too"),
    (("vlm-tokens", "--budget", "1e11,,3e11"), "an element of the comma-separated list is empty"),
    (("estimate", "bert-base", "--hw", "h100", "--image-size", "448x448"), "bert-base has no vision tower"),
    (("plan", "llama-3.1-8b", "--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft", "1", "--candidates",
      "h100", "--tp", "3"), "--tp 3: 3 does not divide the 32 attention heads of llama-3.1-8b"),
    (("plan", "llama-3.1-8b", "--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft", "1", "--candidates",
      "h100", "--layouts", "ep"), "--layouts ep: ep and dp-ep spread an MoE model's experts"),
    (("idealized", "llama-3.1-8b", "--hw", "h100", "--prompt", "0"), "--prompt 0: a generated token needs"),
    (("specdec", "--target", "llama-3.1-8b", "--draft", "llama-3.2-1b", "--hw", "h100", "--alpha", "0.9", "--context",
      "0"), "--context 0: expected the tokens before the drafted ones"),
    (("specdec", "--target", "llama-3.1-405b", "--draft", "llama-3.2-1b", "--hw", "h100", "--alpha", "0.9"),
     "(try --tp 16)"),
    (("plan", "llama-3.1-8b", "--qps", "1e-300", "--prompt", "512", "--gen", "128", "--slo-ttft", "1", "--candidates",
      "h100"), "--qps 1e-300: expected at least 1e-06 requests per second"),
    (("estimate", "mamba2-2.7b", "--hw", "h100", "--tp", "2"),
     "--tp 2: mamba2-2.7b has no attention layers, and tensor parallelism of its recurrent heads is not modelled"),
    (("whatif", "llama-3.1-8b", "--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft", "1", "--candidates",
      "h100", "--vary", "fmt=bf16|fp8", "--fmt", "fp8"), "--fmt fp8: whatif varies fmt (--vary fmt=bf16|fp8)"),
    # a plot's error names the option, not the library function that draws it
    (("sweep", "--models", "llama-3.1-405b", "--hw", "l40s", "--fmt", "bf16", "--plot", "nothing.png"),
     "--plot: no configuration fits"),
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
        "heavy = [m for m in ('matplotlib', 'scipy', 'sympy', 'numba', 'costmodel.engine.numba_setup')\n"
        "         if m in sys.modules]\n"
        "sys.stderr.write('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().endswith("HEAVY="), done.stderr
    done = subprocess.run([sys.executable, "-m", "costmodel", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "estimate" in done.stdout


@pytest.mark.parametrize("given,expected", [
    ("orin-nano-super", "jetson-orin-nano-super-8gb"),  # never the different device 'orin-nano'
    ("thor", "jetson-agx-thor"), ("rtx4090", "rtx-4090"), ("h1000", "h100"), ("m2pro", "m2-pro"),
])
def test_did_you_mean_never_names_a_different_existing_device(run_cli, given, expected):
    code, _, err = run_cli("estimate", "llama-3.2-1b", "--hw", given)
    assert code == 2 and f"did you mean '{expected}'?" in err


def test_suggestions_never_drop_a_qualifier():
    """Property: a suggestion is never a known name whose tokens are a strict subset of the query's."""
    from costmodel.errors import _tokens, suggest
    from costmodel.spec.catalog import index

    known = list(index("hardware").entries) + list(index("hardware").aliases)
    for k in known:
        query = k + "-super"
        if query in known:
            continue
        got = suggest(query, known)
        assert not got or not set(_tokens(got[0])) < set(_tokens(query)), (query, got)


def test_show_accepts_spec_paths(run_cli):
    from tests.conftest import DATA

    code, out, err = run_cli("show", str(DATA / "tiny.yaml"))
    assert code == 0 and "model: tiny" in out
    code, out, err = run_cli("show", str(DATA / "config.json"), "--json")
    assert code == 0 and json.loads(out)["kind"] == "models"
    code, out, err = run_cli("show", "hardware/nvidia-hopper.yaml")
    assert code == 2 and "holds 6 hardware entries" in err and "costmodel show ID" in err
    code, out, err = run_cli("show", "nosuch")
    assert code == 2 and "costmodel list hardware" in err and "list id" not in err


def test_list_shows_whole_ids_and_words(run_cli):
    code, out, _ = run_cli("list", "hardware")
    assert code == 0 and "jetson-orin-nano-super-8gb" in out and "…" not in out
    assert "memory_bytes" not in out and "usd_per_hour" not in out


def test_help_has_no_bool_placeholders_and_every_option_is_explained(run_cli):
    from costmodel.cli.main import _command

    cmd = _command()
    for name, sub in cmd.commands.items():
        code, out, _ = run_cli(name, "--help")
        assert code == 0 and "<bool>" not in out, name
        missing = [p.name for p in sub.params if getattr(p, "param_type_name", "") == "option" and not p.help]
        assert not missing, (name, missing)


def test_a_start_builds_only_the_command_it_runs_with_the_same_options():
    """`costmodel NAME ...` builds NAME alone (cli/main._app_for); its parameters and help are those of
    the whole app's NAME; help, unknown names and no name get the whole app."""
    from costmodel.cli.main import _command

    whole = _command()
    for name, full in whole.commands.items():
        alone = _command(args=[name, "--json"])
        assert list(alone.commands) == [name]
        sub = alone.commands[name]
        assert [(p.name, p.opts, p.default, p.required) for p in sub.params] == \
               [(p.name, p.opts, p.default, p.required) for p in full.params], name
        assert sub.help == full.help
    for args in ([], ["--help"], ["estimat", "x"], ["--help", "estimate"], ["-h", "sweep"]):
        assert sorted(_command(args=args).commands) == sorted(whole.commands)
    assert list(_command(args=["estimate", "--help"]).commands) == ["estimate"]


def test_dollars_per_output_and_per_total_token(run_cli):
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--prompt", "1000", "--gen", "250", "--json")
    d = json.loads(out)
    # the same dollars over 250 output tokens or over 1250 prompt + output tokens
    assert d["usd_per_million_total_tokens"] == pytest.approx(d["usd_per_million_tokens"] * 250 / 1250)
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100")
    assert "$ per million output tokens" in out and "(prompt + output)" in out
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "max")
    assert "static batch" in out


@pytest.mark.parametrize("content", [b"\x00\x01\x02binary", "id,source\n\u00e9".encode("latin-1"),
                                     "id,source\n".encode("utf-16")])
def test_unreadable_input_files_are_one_line(run_cli, tmp_path, content):
    for name, args in (("m.csv", ("validate",)), ("a.csv", ("cost-of-pass", "--task", "mmlu", "--candidates",
                                                              "llama-3.1-8b@h100:fp8", "--accuracy")),
                       ("s.yaml", ("show",)), ("config.json", ("show",)), ("p.csv", ("pareto", "--objectives",
                                                                                     "min:tpot_s"))):
        f = tmp_path / name
        f.write_bytes(content)
        code, out, err = run_cli(*args, str(f))
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (args, err)
        assert str(f) in err


def test_loaded_and_idealized_estimates_of_attention_free_models(run_cli):
    """Models without attention layers under a load (the serving model calls the engine with arrays of
    batches and contexts on one configuration's scalar columns) and in `idealized`."""
    for args in (("estimate", "mamba2-2.7b", "--hw", "h100", "--concurrency", "8", "--json"),
                 ("estimate", "mamba2-2.7b", "--hw", "h100", "--request-rate", "2", "--json"),
                 ("idealized", "mamba2-2.7b", "--hw", "h100", "--json")):
        code, out, err = run_cli(*args)
        assert code == 0, (args, err)
        assert "NaN" not in out and json.loads(out)
    code, out, _ = run_cli("estimate", "mamba2-2.7b", "--hw", "h100", "--concurrency", "8", "--json")
    assert json.loads(out)["tpot_s"] > 0


def test_force_is_in_the_help(run_cli):
    """--force, which errors about existing files ask for, is listed in the help (it was a hidden flag)."""
    code, out, _ = run_cli("--help")
    assert code == 0 and "--force" in out and "--debug" in out


def test_a_batch_over_memory_names_the_largest_that_fits(run_cli):
    import costmodel

    most = costmodel.estimate("llama-3.1-8b", hw="h100", batch="max").batch
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--batch", "100000")
    assert code == 2 and f"at most {most:,} sequences fit: lower --batch" in err and "try --tp" not in err


def test_a_saturated_split_deployment_is_not_over_100_percent_busy(run_cli):
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1e6", "--disagg",
                           "1p:tp1,1d:tp1")
    text = " ".join(out.split())
    assert code == 0 and "prefill workers saturated (offered" in text and "mean wait unbounded" in text
    assert "% busy" not in text
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1", "--disagg",
                           "1p:tp1,1d:tp1")
    assert code == 0 and "% busy" in out and "saturated" not in out


def test_kv_predict_weights_come_before_the_pool(run_cli):
    # the auxiliary weights were added after the pool and the fit: '154 GiB of 79.6 GiB ... Fits: yes'
    import costmodel

    base = costmodel.estimate("llama-3.1-8b", hw="h100", batch="max")
    e = costmodel.estimate("llama-3.1-8b", hw="h100", batch="max", kv_predict="llama-3.2-1b")
    mem, old = e.memory_dict(), base.memory_dict()
    aux = mem["weights_bytes"] - old["weights_bytes"]
    assert aux > 2 * 2**30 and e.fits and mem["total_bytes"] <= mem["capacity_bytes"] == old["capacity_bytes"]
    assert e.batch < base.batch and mem["kv_pool_bytes"] == pytest.approx(old["kv_pool_bytes"] - 0.9 * aux)
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--kv-predict", "llama-3.1-70b")
    assert code == 2 and "the weights alone need 147.9 GiB" in err


def test_repeatable_options_may_repeat(run_cli):
    code, out, _ = run_cli("plan", "llama-3.1-8b", "--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft", "1",
                           "--candidates", "h100,b200", "--price-per-hour", "h100=1", "--price-per-hour", "b200=2")
    assert code == 0 and "$16.00" in out  # b200 at $2 an hour on 8 devices


def test_no_stray_line_on_stderr_off_a_terminal(run_cli):
    code, _, err = run_cli("sweep", "--hw", "h100")
    assert code == 0 and err == ""
    code, _, err = run_cli("sweep", "--hw", "h100", "--batch", "1.5")
    assert code == 2 and err.startswith("costmodel: error:") and err.count("\n") == 1


def test_upper_case_extensions(run_cli, tmp_path):
    for name in ("o.CSV", "o.Parquet"):
        code, _, err = run_cli("sweep", "--out", str(tmp_path / name))
        assert code == 0, err
        code, out, err = run_cli("pareto", str(tmp_path / name))
        assert code == 0 and "llama-3.1-8b" in out, err


def test_profile_refuses_weights_beyond_free_memory(run_cli):
    # the end-to-end run built llama-3.1-405b's weights whole and the kernel killed the process
    code, _, err = run_cli("profile", "--quick", "--model", "llama-3.1-405b", "--out", "unused-profile-out")
    assert code == 2 and "--model llama-3.1-405b: its weights take 1511.9 GiB at 32 bits, more than half" in err


def test_vlm_tokens_error_rates_stay_at_most_1():
    import costmodel

    d = costmodel.vlm_tokens("visual_reasoning", text_tokens=50, budgets=[1.0, 1e12])
    assert all(0 <= r["error"] <= 1 and 0 <= r["baseline_error"] <= 1 for r in d["frontier"])
    assert d["frontier"][0]["error"] == 1.0 and d["frontier"][0]["extrapolated"]


def test_tts_accuracy_of_a_tiny_p_is_n_p():
    from costmodel.analyses import tts

    assert tts.accuracy(4, 1e-300) == pytest.approx(4e-300, rel=1e-12)  # 1 - (1 - p)^N rounded to 0: $inf a pass
    assert tts.accuracy(5, 0.3) == pytest.approx(1 - 0.7 ** 5, rel=1e-14)


def test_serve_curve_counts_each_device_format_and_load_once(run_cli):
    import costmodel

    c = costmodel.serve_curve("llama-3.1-8b", ["h100", "h100-sxm"], ["bf16", "bf16"], request_rate=[1, 1, 2])
    assert len(c) == 1 and list(c[0]["batch"]) == [1.0, 2.0]


def test_split_caption_loads_are_the_decode_workers(run_cli):
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "2", "--disagg", "1p,1d")
    text = " ".join(out.split())
    assert code == 0 and "load 1.396% of capacity" in text and "decode workers 1.396% busy" in text


def test_train_says_why_mfu_passes_100_percent(run_cli):
    code, out, _ = run_cli("train", "llama-3.1-8b", "--hw", "h100", "--devices", "8", "--tokens", "1e12", "--seq-len",
                           "9999999")
    text = " ".join(out.split())
    assert code == 0 and "MFU 111.9% exceeds 100%: the published convention" in text
    assert "--seq-len 9,999,999 exceeds llama-3.1-8b's 131,072 positions" in text


def test_suggestions_stay_in_the_family():
    from costmodel.errors import suggest

    known = ["a100-sxm-80gb", "a100-40gb", "h100-sxm", "h100-pcie", "h200", "llama-8b"]
    assert suggest("h100-sxm-80gb", known) != ["a100-sxm-80gb"]  # another device, one letter away
    assert suggest("h100-80gb", known) != ["a100-40gb"]
    assert suggest("h1000", ["h100", "a1000"]) == ["h100"]
    assert suggest("vllm", known) == []  # 'llama-8b' shares three letters


def test_whatif_may_price_a_device_it_varies_into(run_cli):
    code, out, err = run_cli("whatif", "llama-3.1-8b", "--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft",
                             "1", "--candidates", "h100", "--vary", "candidates=h100|b200", "--price-per-hour", "b200=1")
    assert code == 0 and "b200" in out, err


def test_deeply_nested_json_is_a_clear_error(run_cli, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run_cli("import-bench", str(deep), "--model", "llama-3.1-8b", "--hw", "h100", "--engine", "vllm",
                           "--out", str(tmp_path / "rows.csv"))
    assert code == 2 and "JSON nested too deeply to be a benchmark result" in err
    code, _, err = run_cli("estimate", str(deep), "--hw", "h100")
    assert code == 2 and "JSON nested too deeply to be a config.json" in err


def test_serve_curve_names_the_points_over_capacity(run_cli):
    code, _, err = run_cli("serve-curve", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1,10,100")
    assert code == 0 and "request rate 100 left out (unbounded latency)" in " ".join(err.split())


def test_formula_states_where_its_prefill_forms_hold(run_cli):
    import json

    code, out, _ = run_cli("formula", "mamba2-2.7b", "--json")
    d = json.loads(out)
    # a chunked scan's prefill is not a polynomial: the fit is off at a held-out point (1.3%), and says where it holds
    assert code == 0 and d["prefill_fit_error"] > 0.01 and "within one chunk (8192 tokens)" in d["prefill_domain"]
    code, out, _ = run_cli("formula", "llama-3.1-8b", "--json")
    assert json.loads(out)["prefill_fit_error"] < 1e-3


def test_explain_shows_a_scan_of_vector_work():
    import costmodel

    rows = costmodel.estimate("jamba-v0.1", "h100", tp=2).explain()
    scan = next(r for r in rows if r["op"] == "ssm_scan" and r["phase"] == "prefill")
    assert scan["flops"] == 0 and scan["vector_flops"] > 1e9 and scan["intensity"] > 0  # it showed 0 FLOPs and '-'


def test_an_e2e_band_never_ends_below_ttfts():
    from costmodel.serving import serve_load

    d = serve_load("llama-3.1-8b", "h100", concurrency=4, prompt=150000, gen=100)
    for q in ("s", "p50_s", "p90_s", "p99_s"):  # a closed loop's bands: every latency has one
        t, e = d["interval"]["ttft_" + q], d["interval"]["e2e_latency_" + q]
        assert e["low"] >= t["low"] and e["high"] >= t["high"], q


def test_calibrate_names_why_every_row_was_skipped(run_cli, tmp_path):
    # an unknown device id skipped every row, and it said 'no rows of a calibratable engine (trt-llm)'
    lines = open("data/measurements.csv", encoding="utf-8").read().splitlines()
    rows = [line.replace(",h100-sxm,", ",h100-sxmm,") for line in lines[1:] if ",h100-sxm," in line][:5]
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([lines[0], *rows]) + "\n")
    code, _, err = run_cli("calibrate", str(bad), "--out", str(tmp_path / "cal"))
    assert code == 2 and "no row can be calibrated: 5 skipped, 5 for: unknown hardware 'h100-sxmm'" in err
    assert "did you mean 'h100-sxm'" in err


def test_a_load_notes_requests_past_the_models_positions(run_cli):
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "4", "--prompt", "200000")
    text = " ".join(out.split())
    assert code == 0 and "a mean request of 200,128 tokens exceeds llama-3.1-8b's 131,072 positions" in text


def test_dash_h_is_help(run_cli):
    for args in (("-h",), ("estimate", "-h")):
        code, out, _ = run_cli(*args)
        assert code == 0 and "Usage: costmodel" in out
