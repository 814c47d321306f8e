"""Run a calibration end to end and write `calibration/fitted.yaml` with its provenance."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from costmodel.calibration import coverage as V
from costmodel.calibration import fit as C
from costmodel.calibration import layout_band as L
from costmodel.calibration.layout_band import is_layout_row
from costmodel.calibration.measurements import METRICS, load_kind, read_measurements
from costmodel.calibration.predict import prepare
from costmodel.spec.engine_params import base_engine

HEADER = ("# Written by `costmodel calibrate`; do not edit by hand. Re-running the command in\n"
          "# `provenance.command` on the files in `provenance.inputs` reproduces these values.\n")


def _round(x: float) -> float:
    return float(f"{x:.5g}")


def _blocks(values: dict, source: str) -> dict:
    return {k: {"value": _round(float(v)), "source": source} for k, v in values.items()}


MAX_ROWS = 20_000
MIN_OVERHEAD_MODELS = 3  # models an engine's loaded rows must cover before its request overhead is fitted


def run(paths: list[str], out_dir: str | None = None, engine: str | None = None, cross_validate: bool = True,
        progress=None, force: bool = False) -> dict:
    """Calibrate on measurement files; write OUT/calibration/fitted.yaml (without `out_dir`: install
    into the user catalogue, with the devices' specs and their engine as default); return the summary.

        >>> summary = costmodel.calibrate(["my-gpu/measurements.csv"], out_dir="my-calibration")
        >>> summary["leave_one_device_out"]["all"]["median_ape"], summary["path"]
    """
    rows = []
    inputs = []
    for folder in spec_dirs(paths):
        env_with(str(folder))
    for p in paths:
        got = read_measurements(p)
        rows.extend(got)
        inputs.append({"path": str(p), "sha256": C.file_digest(p), "rows": len(got)})
    # expert-parallel and attention-data-parallel rows are scored by validate, not fitted: held out,
    # they measure the layout model (operators.collectives), which has no fitted parameter of its own
    # split prefill/decode and prefix-cache rows are scored by validate, not fitted: no fitted parameter
    # is theirs alone
    rows = [r for r in rows if not r.scored_only]
    layout_rows = [r for r in rows if is_layout_row(r)]
    rows = [r for r in rows if r.dp == 1 and r.ep == 1]
    served = [r for r in rows if r.load_mode in ("closed", "poisson")]
    # start-up memory depends on no fitted parameter; rows under a load are fitted after (request
    # overhead); N requests sent at once (offline, batch = N) are scored by validate, not fitted:
    # fitted, their drain tails (ShareGPT lengths) pushed the decode steps of the same engines 2-3x
    # too slow on closed-loop rows of other sources (README, Calibration)
    bursts = [r for r in rows if not r.is_memory and r.load_mode == "offline" and r.batch > 0]
    rows = [r for r in rows if not r.is_memory and (r.load_mode == "static"
                                                    or (r.load_mode == "offline" and r.batch < 0))]
    rows += _decode_from_serving(served, rows)
    if len(rows) > MAX_ROWS:
        from costmodel.errors import CostModelError

        raise CostModelError(f"{len(rows):,} measurement rows: calibrate fits at most {MAX_ROWS:,} (its leave-one-"
                             f"device-out refits grow with rows x devices); calibrate a sample or one engine at a "
                             f"time (validate has no such limit)")
    rs = prepare(rows, engine)
    from costmodel.calibration.predict import with_rows

    # every measured row ran, so every row is fitted (also those the memory model would not fit)
    rs_fit = with_rows(rs, np.ones(len(rs), dtype=bool))
    layout = C.build_layout(rs_fit)
    if not layout.engines and not len(rs) and rs.skipped:  # every row was skipped: say why, not 'no engine'
        from collections import Counter

        from costmodel.errors import CostModelError

        why = Counter(reason for _, reason in rs.skipped).most_common(2)
        raise CostModelError(f"no row can be calibrated: {len(rs.skipped)} skipped, "
                             + "; ".join(f"{n} for: {reason}" for reason, n in why))
    if not layout.engines:
        from costmodel.errors import CostModelError

        engines = ", ".join(sorted({r.framework for r in rows} - {""}))
        raise CostModelError("no rows of a calibratable engine" + (f" (the rows' engines: {engines})" if engines else
                                                                   " (no row names its engine)"))
    uncal = _uncalibrated_errors(rs_fit)
    theta = C.fit(rs_fit, layout)
    in_err = C.log_errors(theta, layout, rs_fit)
    summary = {"rows_used": len(rs_fit), "rows_skipped": len(rs.skipped),
               "uncalibrated": C.summarize(uncal, rs_fit.rows), "in_sample": C.summarize(in_err, rs_fit.rows)}
    n_devices = len({r.hardware for r in rs_fit.rows})
    if cross_validate and n_devices < 2:
        summary["note"] = "leave-one-device-out needs measurements of at least 2 devices: intervals use in-sample residuals"
        cross_validate = False
    folds: dict = {}
    lodo = loeo = None
    if cross_validate:
        lodo = C.leave_one_device_out(rs_fit, theta, layout, progress)
        summary["leave_one_device_out"] = C.summarize(lodo, rs_fit.rows)
        interval_err, residual_name = lodo, "leave-one-device-out"
        if len({r.source for r in rs_fit.rows}) >= 2:
            loso = C.leave_one_group_out(rs_fit, "source", theta, layout, progress, folds)
            summary["leave_one_source_out"] = C.summarize(loso, rs_fit.rows)
            # intervals from the harder split: a new source (build, harness, lab) is what users bring
            interval_err, residual_name = loso, "leave-one-source-out"
        if len({base_engine(e) for e in rs_fit.engines}) >= 2:
            loeo = C.leave_one_group_out(rs_fit, "engine", theta, layout, progress)
            summary["leave_one_engine_out"] = C.summarize(loeo, rs_fit.rows)
    else:
        interval_err, residual_name = in_err, "in-sample"
    intervals = C.intervals_from(interval_err, rs_fit)
    # an engine without fitted values: the error of predicting an engine from the others (per family)
    unc = C.intervals_from(loeo if loeo is not None else uncal, rs_fit).get("*", {})
    if unc:
        intervals["uncalibrated"] = unc
    new_device = C.intervals_from(lodo, rs_fit) if lodo is not None and residual_name != "leave-one-device-out" else {}
    new_device.pop("*", None)
    widen: dict = {}
    if cross_validate and residual_name == "leave-one-source-out":
        summary["interval_coverage_held_out"], widen = V.held_out_coverage(rs_fit, lodo, interval_err, loeo)
    _scored_only_intervals(intervals, bursts, engine, set(rs_fit.engines), theta, layout)
    tables = C.tables_from(theta, layout)
    devs = C.device_tables(theta, layout, rs_fit)
    date = C.today()
    source = f"fit: costmodel calibrate on {date}, {len(rs_fit)} rows of {', '.join(str(p) for p in paths)}"
    engines_out = {}
    for e, t in tables.items():
        engines_out[e] = {"global": _blocks(t["global"], "fit"),
                          "families": {f: _blocks(v, "fit") for f, v in t["families"].items()},
                          "devices": {d: _blocks(v, "fit") for d, v in devs.get(e, {}).items()}}
    residuals = _ttft_residuals(served, engine, theta, layout)
    overhead = _request_overheads(residuals, engine)
    for e, (value, _) in overhead.items():
        engines_out.setdefault(e, {"global": {}, "families": {}, "devices": {}})
        engines_out[e]["global"]["request_overhead_s"] = {"value": _round(value), "source": "serving"}
    if overhead:
        summary["request_overhead"] = {e: {"value_s": v, "rows": n} for e, (v, n) in overhead.items()}
        summary["request_overhead_loso"] = _overhead_loso(residuals, engine)
    served_rs, served_err = _served_errors(served, engine, theta, layout, folds, residuals, overhead)
    served_name = "serving_leave_one_source_out" if folds else "serving_in_sample"
    if len(served_rs):
        summary[served_name] = C.summarize(served_err, served_rs.rows, detailed=True)
        if folds:
            cov, w = V.served_coverage(served_rs, served_err)
            summary.setdefault("interval_coverage_held_out", {}).update(cov)
            widen.update(w)
        for e, fams in C.intervals_from(served_err, served_rs, kind_of=load_kind).items():
            for f, kinds in fams.items():
                intervals.setdefault(e, {}).setdefault(f, {}).update(kinds)
    layout_band = _layout_band(layout_rows, engine, theta, layout, overhead, summary)
    doc = {
        "provenance": {
            "date": date,
            "command": "costmodel calibrate " + " ".join(str(p) for p in paths)
                       + (f" --engine {engine}" if engine else "") + ("" if cross_validate else " --no-cross-validate"),
            "inputs": inputs,
            "rows_used": summary["rows_used"],
            "rows_skipped": summary["rows_skipped"],
            "method": "scipy least_squares (soft-L1) on log(predicted/measured); hierarchical engine -> family "
                      "-> device offsets with Gaussian shrinkage (costmodel/calibrate.py)",
            "interval_residuals": residual_name,
            "errors": {k: _round_stats(summary[k]) for k in ("uncalibrated", "in_sample", "leave_one_device_out",
                                                             "leave_one_source_out", "leave_one_engine_out")
                       if k in summary},
            **({"request_overhead_leave_one_source_out": summary["request_overhead_loso"]}
               if summary.get("request_overhead_loso") else {}),
            **({served_name: _round_stats(summary[served_name])} if summary.get(served_name) else {}),
            **({"interval_coverage_held_out": _round_coverage(summary["interval_coverage_held_out"])}
               if summary.get("interval_coverage_held_out") else {}),
        },
        "sources": {"fit": source, "serving": f"fit: costmodel calibrate on {date}: median of measured minus modelled "
                                              f"median TTFT (the mean where no median; without the overhead) over "
                                              f"the engine's closed-loop and Poisson rows of "
                                              f"{', '.join(str(p) for p in paths)}"},
        "engines": engines_out,
        "intervals": _round_intervals(intervals),
        **({"intervals_new_device": _round_intervals(new_device)} if new_device else {}),
        **({"interval_widening": {k: _round(v) for k, v in widen.items()}} if widen else {}),
        **({"intervals_layout": {k: {"low": _round(q["low"]), "high": _round(q["high"]), "n": q["n"]}
                                 for k, q in layout_band.items()}} if layout_band else {}),
    }
    summary["interval_widening"] = widen
    if out_dir is None:  # install into the user catalogue: the calibration applies by default from now on
        from costmodel.spec.catalog import user_root

        root = user_root()
        doc["default_engine"] = _device_engines(rs_fit)
        doc["engines"] = _own_devices(engines_out, doc["default_engine"])
        summary["installed"] = {"catalogue": str(root), "default_engine": doc["default_engine"],
                                "hardware": install_specs(paths, root)}
        name = "user-" + _label(paths) + ".yaml"
    else:
        root, name = Path(out_dir), "fitted.yaml"
    folder = root / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if path.exists() and not force and out_dir is not None:
        from costmodel.errors import CostModelError

        raise CostModelError(f"--out {out_dir}: {path} exists; pass --force to replace it")
    from costmodel.spec.files import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(HEADER + yaml.safe_dump(doc, sort_keys=False, width=110), encoding="utf-8")
    summary["path"] = str(path)
    summary["parameters"] = len(layout.names)
    return summary


def _layout_band(rows, engine, theta, layout, overhead: dict, summary: dict) -> dict:
    """The band of EP / DP-attention rows (calibration/layout_band.py); their error and held-out
    coverage go into the summary."""
    rs, r = L.layout_residuals(rows, engine, theta, layout, overhead)
    if not len(rs):
        return {}
    kept = rs.rows
    kinds = [L.kind_of(x) for x in kept]
    from costmodel.spec.engine_params import efficiency_for

    levels = [efficiency_for(x.hardware, f, e).calibration_level(x.hardware, f)
              for x, e, f in zip(kept, rs.engines, rs.families)]
    # the installed calibration's bands (calibrate reproduces itself; they come from TP/PP rows only)
    usual = [L.usual_band(x, e, f, lv) for x, e, f, lv in zip(kept, rs.engines, rs.families, levels)]
    # pred/meas = e^-r for a time, e^r for a rate (r = log measured time / predicted time)
    sign = np.array([1.0 if METRICS[row.metric][2] == "rate" else -1.0 for row in kept])
    ape = np.abs(np.exp(sign * r) - 1)
    fin = np.isfinite(ape)
    summary["layout_rows"] = {"n": int(fin.sum()), "median_ape": float(np.median(ape[fin])),
                              "p90_ape": float(np.percentile(ape[fin], 90)),
                              "held_out_coverage": L.held_out_coverage(r, kinds, [x.source for x in kept], usual)}
    return L.bands(r, kinds)


def _decode_from_serving(served, static_rows) -> list:
    """Closed-loop mean TPOT rows of engines with fewer static or maximum-load rows than such TPOT
    rows, as static decode rows: C clients decode as a batch of C at the mean context, lengths at
    their distribution's means. They calibrate those engines' decode (SGLang, vLLM); where an
    engine's static rows are the majority, those cleaner measurements define its fit and its serving
    rows stay out of sample (fitting both moved TensorRT-LLM's leave-one-source-out P90 on the
    published rows from 35% to 42%)."""
    from collections import Counter
    from dataclasses import replace

    from costmodel.engine.serving import parse_dist
    from costmodel.errors import CostModelError

    served = [r for r in served if not r.scored_only]  # split deployments, prefix caches: scored, not fitted
    static = Counter(r.framework for r in static_rows)
    loaded = Counter(r.framework for r in served if r.metric == "tpot_ms" and r.load_mode == "closed")
    out = []
    for r in served:
        if r.metric != "tpot_ms" or r.load_mode != "closed" or static[r.framework] >= loaded[r.framework]:
            continue
        try:
            p = parse_dist(r.length_dist or None, max(r.prompt_tokens, 1), "prompt").mean
            g = parse_dist(r.length_dist or None, max(r.output_tokens, 2), "gen").mean
        except CostModelError:
            continue
        out.append(replace(r, load="static", prompt_tokens=int(round(p)), output_tokens=int(round(g))))
    return out


def _scored_only_intervals(intervals: dict, rows, engine, fitted: set, theta, layout) -> None:
    """Intervals from scored-only rows (N requests at once): for an engine with no fitted rows, the
    residuals of its defaults on those rows per metric kind, on top of the uncalibrated bands for
    the kinds those rows do not measure; for a fitted engine, only the kinds its fitted rows do not
    measure. The band widens to the error the engine was measured to have (vLLM's burst
    throughput: about 2x below the defaults). Predicted with the parameters just fitted (not the
    installed calibration), so that re-running calibrate reproduces its own output."""
    from costmodel.calibration.predict import predict

    rs = prepare(rows, engine)
    if not len(rs):
        return
    lay, th = C.transfer(layout, theta, rs, device_offsets=True)
    hw, f = C.overrides(th, lay, rs)
    pred, _ = predict(rs, hw_overrides=hw, f_overrides=f)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.log(pred / np.array([r.value for r in rs.rows]))
    measured = C.intervals_from(err, rs)
    base = intervals.get("uncalibrated", {}).get("*", {})
    for e, by_family in measured.items():
        if e == "*":
            continue
        if e in fitted:  # kinds its fitted rows do not measure (SGLang's burst throughput)
            for f, kinds in by_family.items():
                have = intervals.setdefault(e, {}).setdefault(f, {})
                for k, q in kinds.items():
                    have.setdefault(k, q)
            continue
        intervals[e] = {f: {**base, **kinds} for f, kinds in by_family.items()}


def _ttft_residuals(rows, engine, theta, layout) -> tuple[list, list]:
    """(rows, measured − modelled median TTFT in s without any request overhead) of loaded TTFT rows
    (the mean where an engine's rows report no median), modelled with the parameters just fitted
    (not the installed calibration), so that re-running calibrate reproduces its own output."""
    from costmodel.calibration.predict import engine_of, predict

    # the median: a per-request constant, robust to a benchmark's first-wave and queueing tails (fitted
    # on means it absorbed those tails: 0.34 s instead of 0.10 s for SGLang, TTFT P50 error 80% vs 36%)
    p50 = {engine_of(r.framework) for r in rows if r.metric == "ttft_p50_ms"}
    ttft = [r for r in rows if r.metric == "ttft_p50_ms" or (r.metric == "ttft_ms" and engine_of(r.framework) not in p50)]
    rs = prepare(ttft, engine)
    if not len(rs):
        return [], []
    lay, th = C.transfer(layout, theta, rs, device_offsets=True)
    hw, f = C.overrides(th, lay, rs)
    pred, _ = predict(rs, hw_overrides={**hw, "request_overhead_s": np.zeros(len(rs))}, f_overrides=f)
    keep = np.isfinite(pred)
    resid = [(r.value - p) / 1e3 for r, p, k in zip(rs.rows, pred, keep) if k]
    return [r for r, k in zip(rs.rows, keep) if k], resid


def _served_errors(rows, engine, theta, layout, folds: dict, residuals, overhead: dict):
    """(RowSet, out-of-sample log(pred/meas)) of rows under a load: each source predicted by the fit
    that left it out (the full fit where none of its rows was fitted), with the request overhead the
    engine's other sources give (where the engine has one fitted). These residuals are the serving
    intervals and the serving leave-one-source-out error."""
    from costmodel.calibration.predict import predict, with_rows

    rs = prepare(rows, engine)
    err = np.full(len(rs), np.nan)
    if not len(rs):
        return rs, err
    sources = np.array([r.source for r in rs.rows])
    for s in sorted(set(sources)):
        sel = np.where(sources == s)[0]
        sub = with_rows(rs, sel)
        lay, th = C.transfer(*folds.get(s, (layout, theta)), sub, device_offsets=True)
        hw, f = C.overrides(th, lay, sub)
        other = {e: _overhead_without(residuals, engine, s, e) if e in overhead else None for e in set(sub.engines)}
        over = np.array([other[e] or 0.0 for e in sub.engines])
        pred, _ = predict(sub, hw_overrides={**hw, "request_overhead_s": over}, f_overrides=f)
        with np.errstate(divide="ignore", invalid="ignore"):
            err[sel] = np.log(pred / sub.measured)
    keep = np.isfinite(err)
    return with_rows(rs, keep), err[keep]


def _request_overheads(residuals, engine) -> dict:
    """{engine: (request overhead s, rows)}: the median TTFT residual of its loaded rows, >= 0."""
    from costmodel.calibration.predict import engine_of

    kept, resid = residuals
    out: dict = {}
    for r, x in zip(kept, resid):
        out.setdefault(engine or engine_of(r.framework), []).append((r, x))
    fitted = {}
    for e, pairs in out.items():
        # a constant fitted on one model or one source would memorize that model's prefill error
        if len({r.model for r, _ in pairs}) >= MIN_OVERHEAD_MODELS and len({r.source for r, _ in pairs}) >= 2:
            fitted[e] = (max(0.0, float(np.median([x for _, x in pairs]))), len(pairs))
    return fitted


def _overhead_without(residuals, engine, source: str, eng: str) -> float | None:
    """Engine `eng`'s request overhead as the median TTFT residual of its loaded rows from sources
    other than `source` (>= 0), or None when it has none."""
    from costmodel.calibration.predict import engine_of

    kept, resid = residuals
    others = [x for r, x in zip(kept, resid) if r.source != source and (engine or engine_of(r.framework)) == eng]
    return max(0.0, float(np.median(others))) if others else None


def _overhead_loso(residuals, engine) -> dict:
    """|error| of mean TTFT when each source's overhead comes from the engine's other sources."""
    from costmodel.calibration.predict import engine_of

    kept, resid = residuals
    errs = []
    for r, x in zip(kept, resid):
        over = _overhead_without(residuals, engine, r.source, engine or engine_of(r.framework))
        if over is not None:
            modelled = r.value / 1e3 - x  # model TTFT without the overhead
            errs.append(abs((modelled + over) * 1e3 / r.value - 1))
    if not errs:
        return {}
    return {"n": len(errs), "median_ape": float(np.median(errs)), "p90_ape": float(np.percentile(errs, 90))}


def _label(paths: list[str]) -> str:
    """A file-name label for a user calibration: the first input's folder and stem."""
    import re

    p = Path(paths[0]).resolve()
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{p.parent.name}-{p.stem}").strip("-") or "calibration"


def _own_devices(engines_out: dict, measured: dict) -> dict:
    """The engine blocks a user calibration installs: for an engine the shipped calibration already fits, only its
    measured devices, each with every value the fit resolves for it (global, then its family's, then its own), so
    that a user's rows of one device do not refit the engine's global and family values for every other device
    (8 vLLM rows of a user's box moved the H100's TPOT from 8.22 to 5.13 ms); an engine the shipped calibration
    does not know (numpy, of a CPU profile) keeps its global and family blocks."""
    from costmodel.spec.catalog import builtin_root, read_yaml
    from costmodel.spec.hardware import load_hardware

    shipped = set((read_yaml(builtin_root() / "calibration" / "fitted.yaml") or {}).get("engines") or ())
    out = {}
    for e, blocks in engines_out.items():
        if e not in shipped:
            out[e] = blocks
            continue
        devices = {}
        for d, engine in measured.items():
            if engine != e:
                continue
            family = load_hardware(d).family
            devices[d] = {**blocks.get("global", {}), **blocks.get("families", {}).get(family, {}),
                          **blocks.get("devices", {}).get(d, {})}
        if devices:
            out[e] = {"devices": devices}
    return out


def _device_engines(rs) -> dict:
    """{device: the engine most of its rows were measured with}: estimates on a device a user
    calibrated take that calibration when --engine is auto."""
    from collections import Counter

    counts: dict = {}
    for r, e in zip(rs.rows, rs.engines):
        counts.setdefault(r.hardware, Counter())[e] += 1
    return {dev: c.most_common(1)[0][0] for dev, c in sorted(counts.items())}


def spec_dirs(paths: list[str]) -> list[Path]:
    """Folders beside measurement files that hold hardware/ or models/ specs (profile runs)."""
    out = []
    for p in paths:
        folder = Path(p).resolve().parent
        if ((folder / "hardware").is_dir() or (folder / "models").is_dir()) and folder not in out:
            out.append(folder)
    return out


def install_specs(paths: list[str], root: Path) -> list[str]:
    """Copy the device/model specs of profile runs into the user catalogue (never over a different file)."""
    from costmodel.errors import CostModelError

    done = []
    for folder in spec_dirs(paths):
        for kind in ("hardware", "models"):
            for src in sorted((folder / kind).glob("*.yaml")):
                dest = root / kind / src.name
                text = src.read_text(encoding="utf-8")
                if dest.exists() and dest.read_text(encoding="utf-8") != text:
                    raise CostModelError(f"{dest} exists with other contents; remove it or pass --out DIR to "
                                         f"calibrate into a folder of your choice")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(text, encoding="utf-8")
                done.append(str(dest))
    return done


def _uncalibrated_errors(rs) -> np.ndarray:
    """log(pred/meas) of the datasheet engine with the sourced global defaults (engine 'ideal')."""
    from costmodel.spec.engine_params import efficiency_for

    base = efficiency_for("-", "-", "ideal")
    n = len(rs)
    hw = {k: np.full(n, getattr(base, k)) for k in ("compute_efficiency", "memory_efficiency", "kernel_overhead_s",
                                                     "step_overhead_s", "compute_half_rows",
                                                     "attention_efficiency")}
    from costmodel.calibration.predict import predict

    pred, _ = predict(rs, hw, {"peak_matmul": rs.f["peak_raw"]})
    return np.log(pred / rs.measured)


def _round_stats(stats: dict) -> dict:
    return {m: {k: (_round(v) if isinstance(v, float) else v) for k, v in s.items()} for m, s in stats.items()}


def _round_coverage(cov: dict) -> dict:
    def r(d):
        return {k: (_round(v) if isinstance(v, float) else r(v) if isinstance(v, dict) else v)
                for k, v in d.items()}
    return r(cov)


def _round_intervals(iv: dict) -> dict:
    return {e: {f: {k: {"low": _round(q["low"]), "high": _round(q["high"]), "n": q["n"]} for k, q in kinds.items()}
                for f, kinds in fams.items()} for e, fams in iv.items()}



def env_with(path: str) -> None:
    """Add a folder to COSTMODEL_PATH (for profiled devices next to their measurements)."""
    cur = os.environ.get("COSTMODEL_PATH", "")
    parts = [p for p in cur.split(os.pathsep) if p]
    if path not in parts:
        os.environ["COSTMODEL_PATH"] = os.pathsep.join([path] + parts)
