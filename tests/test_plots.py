"""Every plot writes PNG, SVG and PDF; refuses other extensions; labels its axes in words with
units; the roofline draws a roof for each compute unit its operators use."""
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import costmodel
from costmodel import plots
from costmodel.errors import CostModelError

pytest.importorskip("matplotlib")

SNAKE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
COLUMN_NAMES = set(plots.COLUMNS) | {"usd_per_million_tokens", "throughput_tokens_per_s", "batch_requested", "reason_code"}


@pytest.fixture(scope="module")
def est():
    return costmodel.estimate("llama-3.1-8b", "h100", "fp8", batch=8, prompt=512, gen=128)


@pytest.fixture(scope="module")
def swept():
    return costmodel.sweep(models=["llama-3.1-8b"], hw=["h100", "b200"], fmt=["bf16", "fp8", "nvfp4"],
                           batch=[1, 16, "max"], prompt=[1000], gen=[200], task="mmlu")


@pytest.fixture(scope="module")
def whatif_rows():
    base = {"model": "llama-3.1-8b", "qps": 10, "prompt": 1000, "gen": 200, "slo_ttft": 0.5, "candidates": "h100,l40s",
            "fmt": "fp8"}
    return base, costmodel.whatif(base, "qps=5,20")


@pytest.fixture(scope="module")
def curves():
    return costmodel.latency_throughput("llama-3.1-8b", ["h100", "l40s"], ["fp8"], prompt=1000, gen=200,
                                        batches=[1, 8, 64, 256])


def drawers(est, swept, whatif_rows, curves):
    """name -> function(path) drawing that plot."""
    base, rows = whatif_rows
    objs = "min:usd_per_million_tokens,min:tpot_s,max:accuracy"
    return {
        "roofline": lambda p: plots.roofline_plot(est, p),
        "memory": lambda p: plots.memory_plot([est], p),
        "pareto": lambda p: plots.pareto_plot(swept, objs, costmodel.pareto_front(swept, objs), p),
        "latency_throughput": lambda p: plots.latency_throughput_plot(curves, p, prompt=1000, gen=200),
        "whatif": lambda p: plots.whatif_plot(rows, "qps", p, base=base),
        "sweep": lambda p: plots.sweep_plot(swept, p),
        "estimates": lambda p: plots.estimates_plot(edge(), p, target=20),
        "test_time_scaling": lambda p: plots.test_time_scaling_plot(tts(), p, model="deepseek-r1-distill-qwen-7b",
                                                                    prompt=200, gen=4000),
        "vlm_tokens": lambda p: plots.vlm_tokens_plot(costmodel.vlm_tokens(text_tokens=50), p),
    }


def edge():
    return [costmodel.estimate(m, h, "q4_0") for m in ("llama-3.2-3b", "llama-3.1-8b") for h in ("m4-pro-20c", "dgx-spark")]


def tts():
    kw = {"p": 0.3, "eps": 0.01, "n_max": 12, "model": "deepseek-r1-distill-qwen-7b", "hw": "h100", "prompt": 200,
          "gen": 4000}
    return {"perfect verifier": costmodel.test_time_scaling(**kw),
            "5% false positives": costmodel.test_time_scaling(false_positive=0.05, **kw)}


NAMES = ["roofline", "memory", "pareto", "latency_throughput", "whatif", "sweep", "estimates", "test_time_scaling",
         "vlm_tokens"]
CATEGORICAL = {"Device"}  # axes whose ticks are names, not numbers


@pytest.fixture
def captured(monkeypatch):
    """The figures the plot functions save, to inspect their axes and legends."""
    figs = []
    real = plots._save

    def keep(fig, path):
        figs.append(fig)
        return real(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return figs


@pytest.fixture(scope="module")
def rendered(est, swept, whatif_rows, curves, tmp_path_factory):
    """Each plot drawn once per format: name -> (folder, the figure saved as SVG)."""
    folder = tmp_path_factory.mktemp("plots")
    figs = {}
    real = plots._save

    def keep(fig, path):
        if path.endswith(".svg"):
            figs[current] = fig
        return real(fig, path)

    plots._save = keep
    try:
        for current, draw in drawers(est, swept, whatif_rows, curves).items():
            for ext in (".png", ".svg", ".pdf"):
                path = folder / f"{current}{ext}"
                assert draw(str(path)) == str(path)
    finally:
        plots._save = real
    return folder, figs


@pytest.mark.parametrize("name", NAMES)
def test_each_plot_writes_png_svg_and_pdf(name, rendered):
    folder, _ = rendered
    magic = {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}
    for ext, head in magic.items():
        data = (folder / f"{name}{ext}").read_bytes()
        assert len(data) > 5_000 and data.startswith(head), (name, ext, len(data))
    # SVG keeps its text as text (searchable, editable in a paper)
    assert "<text" in (folder / f"{name}.svg").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", ["figure.jpg", "figure", "figure.PNG.txt"])
def test_bad_extension_is_refused_naming_the_path(name, bad, est, swept, whatif_rows, curves, tmp_path):
    path = tmp_path / bad
    with pytest.raises(CostModelError) as info:
        drawers(est, swept, whatif_rows, curves)[name](str(path))
    msg = str(info.value)
    assert str(path) in msg and ".png" in msg and ".svg" in msg and ".pdf" in msg
    assert not path.exists()


def test_missing_folder_is_a_clear_error(est, tmp_path):
    with pytest.raises(CostModelError, match="does not exist"):
        plots.roofline_plot(est, str(tmp_path / "nowhere" / "r.png"))


def test_upper_case_extension_is_accepted(est, tmp_path):
    path = tmp_path / "r.PDF"
    plots.memory_plot([est], str(path))
    assert path.read_bytes().startswith(b"%PDF")


def _texts(fig):
    """Every text artist of a figure: axis labels, titles, legends, colour bars, annotations."""
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


@pytest.mark.parametrize("name", NAMES)
def test_axis_labels_are_words_with_units(name, rendered):
    folder, figs = rendered
    fig = figs[name]
    labels = []
    for ax in fig.axes:
        labels += [ax.get_xlabel(), ax.get_ylabel()]
    labels = [lb for lb in labels if lb]
    assert labels, name
    for lb in labels:
        assert not SNAKE.search(lb), f"{name}: raw column name in axis label {lb!r}"
        assert lb in CATEGORICAL or ("(" in lb and ")" in lb), f"{name}: no unit in axis label {lb!r}"
        assert "(min)" not in lb
    assert fig.axes[0].get_title(loc="left"), f"{name}: no title"
    # nothing in the figure spells a column name, and the SVG text agrees
    svg = (folder / f"{name}.svg").read_text(encoding="utf-8")
    for text in _texts(fig) + re.findall(r"<text[^>]*>([^<]*)</text>", svg):
        assert not (set(SNAKE.findall(text)) & COLUMN_NAMES), f"{name}: column name in {text!r}"
    # every plot has a legend (outside or inside the axes)
    assert fig.legends or any(ax.get_legend() for ax in fig.axes), name


def test_titles_name_the_configuration(rendered):
    _, figs = rendered
    roof, mem, what = (figs[n].axes[0].get_title(loc="left").replace("\n", " ") for n in ("roofline", "memory", "whatif"))
    for title in (roof, mem):
        for word in ("llama-3.1-8b", "h100-sxm", "fp8", "batch 8", "prompt 512", "gen 128", "TP 1"):
            assert word in title, (word, title)
    assert "llama-3.1-8b" in what and "prompt 1,000" in what and "TTFT" in what


def test_roofline_has_a_roof_per_compute_unit(est, rendered):
    fig = rendered[1]["roofline"]
    legend = " | ".join(t.get_text() for lg in fig.legends for t in lg.get_texts())
    units = {r["unit"] for r in est.explain() if r["flops"] > 0 and r["unit"] != "comm"}
    assert units == {"matmul", "attention", "vector"}
    # fp8 GEMMs, bf16 attention and fp32 vector ops each have their roof, beside the memory roof
    for dtype, use in (("fp8", "GEMMs"), ("bf16", "attention"), ("fp32", "norms")):
        assert re.search(rf"{dtype} compute roof: [0-9,.]+ TFLOP/s \([^)]*{use}", legend), (dtype, legend)
    assert "memory roof: 3.35 TB/s" in legend
    # the roofs are drawn at the datasheet peaks (TFLOP/s), as horizontal lines
    ax = fig.axes[0]
    flat = {round(float(line.get_ydata()[0]), 3) for line in ax.lines
            if len(line.get_ydata()) == 2 and line.get_ydata()[0] == line.get_ydata()[1] and line.get_linestyle() == "-"}
    for dtype in ("fp8", "bf16", "fp32"):
        assert round(est.hardware.peaks[dtype] / 1e12, 3) in flat, (dtype, flat)
    # operators: marker by phase, colour by operator, all in the legend
    assert "prefill" in legend and "decode" in legend and "QKV projection" in legend and "attention" in legend


def test_roofline_merges_units_that_share_a_datatype(tmp_path, captured):
    e = costmodel.estimate("llama-3.1-8b", "h100", "bf16", batch=1)
    plots.roofline_plot(e, str(tmp_path / "r.png"))
    legend = " | ".join(t.get_text() for lg in captured[-1].legends for t in lg.get_texts())
    assert legend.count("compute roof") == 2  # bf16 (GEMMs and attention) and fp32 (vector)
    assert re.search(r"bf16 compute roof: [0-9,.]+ TFLOP/s \(GEMMs, attention\)", legend), legend


def test_pareto_third_objective_is_a_labelled_colour_bar(swept, tmp_path, captured):
    objs = "min:usd_per_million_tokens,min:tpot_s,max:accuracy"
    plots.pareto_plot(swept, objs, None, str(tmp_path / "p.png"), max_labels=3)
    fig = captured[-1]
    assert len(fig.axes) == 2  # the plot and its colour bar
    assert fig.axes[1].get_ylabel().startswith("Accuracy (%")
    # at most max_labels frontier labels
    assert len(fig.axes[0].texts) <= 3


def test_memory_plot_takes_the_rows_the_cli_passes(tmp_path, captured):
    d = costmodel.estimate("llama-3.1-70b", "h100", "fp8", batch=4).to_dict()
    plots.memory_plot([{**d["memory"], "label": "llama-3.1-70b fp8 B=4 on h100-sxm"}], str(tmp_path / "m.png"))
    fig = captured[-1]
    assert "llama-3.1-70b fp8 B=4 on h100-sxm" in fig.axes[0].get_title(loc="left").replace("\n", " ")
    assert fig.axes[0].get_ylabel() == "Memory per device (GiB)"
    legend = " | ".join(t.get_text() for lg in fig.legends for t in lg.get_texts())
    assert "KV pool the engine allocates" in legend and "Capacity the runtime sees" in legend


def test_numbers_have_thousands_separators():
    assert plots._number(12345.0) == "12,345"
    assert plots._number(1000.0) == "1,000"
    assert plots._number(2.5) == "2.5"
    assert plots._number(0.05) == "0.05"


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, costmodel.plots; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip() == "False", done.stderr


def test_sweep_cli_plot(run_cli, tmp_path):
    png = tmp_path / "sweep.png"
    code, _, err = run_cli("sweep", "--models", "llama-3.1-8b", "--hw", "h100,b200", "--fmt", "bf16,fp8",
                             "--batch", "1,16,max", "--rows", "2", "--plot", str(png))
    assert code == 0, err
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    csv, svg = tmp_path / "s.csv", tmp_path / "s.svg"
    code, _, err = run_cli("sweep", "--models", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--batch", "1,8",
                             "--out", str(csv), "--plot", str(svg))
    assert code == 0 and csv.exists() and "<text" in svg.read_text(encoding="utf-8"), err
    code, _, err = run_cli("sweep", "--plot", str(tmp_path / "s.jpg"))
    assert code == 2 and "s.jpg" in err and ".png, .svg, .pdf" in err and len(err.strip().splitlines()) == 1


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["text", "float", "int", "bool"]), st.integers(1, 200), st.integers(0, 2**31 - 1))
def test_distinct_strings_and_numbers_as_each_row_spelled(kind, n, seed):
    """_distinct_strings (np.unique first) gives dict.fromkeys of each row's str, in order of first appearance, and
    _finite_values sorted({float(v)}) of the finite rows: -0.0 beside 0.0, NaN, inf, repeated values."""
    rng = np.random.default_rng(seed)
    if kind == "text":
        values = np.array(["h100", "b200", "fp8", "bf16", ""])[rng.integers(0, 5, n)]
    elif kind == "float":
        values = np.array([0.0, -0.0, 1.5, np.nan, np.inf, -np.inf, 1e-300, 3.0])[rng.integers(0, 8, n)]
    elif kind == "int":
        values = rng.integers(-3, 4, n)
    else:
        values = rng.integers(0, 2, n).astype(bool)
    assert plots._distinct_strings(values) == list(dict.fromkeys(str(v) for v in values))
    if kind != "text":
        want = sorted({float(v) for v in values if np.isfinite(float(v))})
        assert plots._finite_values(values) == want  # a zero of either sign, as the set keeps whichever came first


def test_narrow_axes_fractional_rates_and_categories_read_as_they_should(captured, tmp_path):
    """A second reader's pass over the figures: a log axis over 806-1,156 tokens/s labelled one tick ('1,000'), a
    request rate of 0.5 was written 'λ=0' (int()), and a what-if over formats joined the categories with lines."""
    curve = {"hardware": "h100-sxm", "format": "fp8", "batch": [0.5, 2.0, 8.0],
             "throughput_tokens_per_s": [806.0, 950.0, 1156.0], "tpot_s": [0.01, 0.012, 0.02]}
    plots.latency_throughput_plot([curve], str(tmp_path / "c.png"), model="m", varied="request rate")
    ax = captured[-1].axes[0]
    assert ax.get_xscale() == "linear"  # under half a decade
    texts = {t.get_text() for t in ax.texts}
    assert {"λ=0.5/s", "λ=8/s"} <= texts
    assert "request rate 0.5 to 8 req/s" in ax.get_title(loc="left").replace("\n", " ")
    plots.latency_throughput_plot([{**curve, "batch": [1.0, 64.0, 16384.0]}], str(tmp_path / "b.png"), model="m",
                                  varied="concurrency")
    ax = captured[-1].axes[0]  # ',.4g' wrote 16,384 as 1.638e+04
    assert "C=16,384" in {t.get_text() for t in ax.texts}
    assert "concurrency 1 to 16,384" in ax.get_title(loc="left").replace("\n", " ")
    rows = [{"value": v, "per_device": {"h100-sxm": {"usd_per_month": c, "devices": 2, "format": v, "tp": 1}},
             "best": {"usd_per_month": c}} for v, c in (("bf16", 3.0e4), ("fp8", 2.0e4))]
    plots.whatif_plot(rows, "fmt", str(tmp_path / "w.png"))
    ax = captured[-1].axes[0]
    assert [line.get_linestyle() for line in ax.get_lines() if len(line.get_xdata()) > 1] == ["None"]
