"""Append gathered llama-bench rows (llama.cpp pp/tg tables from GitHub threads and pages: FOLDER/rows.csv
in the measurement schema, sources in FOLDER/SOURCES.md) to data/measurements.csv.

A row is kept when
  - its source is not reserved for independent validation: no URL in its SOURCES.md section or in its
    notes names what the reserved list names (`--reserved FILE`, default the workspace's
    ../shared/RESERVED-SOURCES.md, read at run time so that this file names none of them): its URLs,
    its `owner/name` repositories and its "discussions / issues / PRs #N" numbers;
  - its weights are the catalogue format's (DOUBTS: Unsloth's dynamic UD-Q*_XL mixes, which llama-bench
    labels "Q4_K - Medium", and gpt-oss "F16" files, MXFP4 experts with 16-bit attention, are not);
  - its source is not in EXCLUDED (a modified llama.cpp, an unofficial port, results not printed by
    llama-bench);
  - its source key is not one already shipped (new sources only: more rows of a shipped source are not
    added here);
  - its device, model, format and KV format are in the catalogue, its engine is llama.cpp or one of its
    declared builds, its metric is a static prefill or decode rate of one sequence on one device;
  - it does not repeat a row already kept (same source, device, model, format, build, lengths, metric):
    where a source ran one configuration under several settings (flash attention on and off, rocBLAS or
    hipBLASLt, master and a PR branch), the first the gatherer lists is kept, the default settings.
Ids are the first 10 hex digits of the SHA-1 of those fields, so a re-run adds nothing twice. Each kept
source's SOURCES.md section is appended to data/measurements_sources.md (once).

    python data/tools/import_llamabench.py FOLDER [FOLDER ...]            # append and report counts
    python data/tools/import_llamabench.py FOLDER [FOLDER ...] --dry-run  # report only
    ... --reserved PATH/RESERVED-SOURCES.md                                # the reserved list elsewhere
"""
from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_serving import write_rows  # noqa: E402  (one writer for the measurement file)

DST = ROOT / "data" / "measurements.csv"
DOCS = ROOT / "data" / "measurements_sources.md"
RESERVED_FILE = ROOT.parent / "shared" / "RESERVED-SOURCES.md"
DOUBTS = re.compile(r"UD-Q\d|gpt-oss-\d+b-F16", re.I)
URL = re.compile(r"https?://\S+")
# gathered sources left out, with the gatherer's reason: not llama.cpp's own build or not a llama-bench run
EXCLUDED = {
    "ghfile_52700641288_gpuext_rtx5090": "a research project's modified llama.cpp copy (VMM off)",
    "ghfile_68541840022_ppc64le_hip_7900xtx": "an unofficial ROCm port on a POWER9 host",
    "ghfile_52781934469_m4max_qwen25_05b": "results retyped by the author, harness not shown",
}
METRICS = ("prefill_tokens_per_s", "decode_tokens_per_s")
KEY = ("source", "hardware", "model", "format", "kv_format", "framework", "prompt_tokens", "output_tokens",
       "context_tokens", "metric")


def reserved_patterns(text: str) -> re.Pattern | None:
    """What a reserved list names, as one pattern to search URLs with: its URLs, its `owner/name`
    repositories, and the numbers of the discussions, issues and PRs it lists (as `discussions/N`,
    `issues/N`, `pull/N` in any repository: stricter than needed, never laxer). None for an empty list."""
    parts = [re.escape(u.rstrip(".,;:)`'\"")) for u in URL.findall(text)]
    parts += [re.escape(r) for r in re.findall(r"\b[A-Za-z][\w.-]*/[\w.-]*\w", text) if "://" not in r]
    for kind, numbers in re.findall(r"\b(discussions?|issues?(?: and PRs?)?|PRs?|pull requests?)((?:[\s,]+(?:and\s+)?#\d+)+)",
                                    text, re.I):
        paths = {"d": ["discussions"], "i": ["issues"] + (["pull"] if "pr" in kind.lower() else []), "p": ["pull"]}
        for n in re.findall(r"#(\d+)", numbers):
            parts += [f"{path}/{n}(?!\\d)" for path in paths[kind[0].lower()]]
    return re.compile("|".join(parts), re.I) if parts else None


def sections(path: Path) -> dict[str, str]:
    """SOURCES.md sections by source key (`## key (N rows)`)."""
    out, key = {}, None
    for line in path.read_text().splitlines() if path.exists() else []:
        m = re.match(r"##\s+([\w.\-]+)", line)
        if m:
            key = m.group(1)
            out[key] = ""
        elif key:
            out[key] += line + "\n"
    return out


def row_id(r: dict) -> str:
    return hashlib.sha1("|".join(str(r.get(k, "")) for k in KEY).encode()).hexdigest()[:10]


def select(rows: list[dict], docs: dict, shipped_sources: set, shipped_ids: set,
           reserved: re.Pattern | None) -> tuple[list, collections.Counter]:
    from costmodel.errors import CostModelError
    from costmodel.spec.engine_params import engine_names
    from costmodel.spec.formats import resolve_format
    from costmodel.spec.hardware import load_hardware
    from costmodel.spec.model_catalog import resolve_model

    engines = {e for e in engine_names() if e.split("/")[0] == "llama.cpp"}
    kept, seen, why = [], set(), collections.Counter()
    for r in rows:
        src = r["source"]
        urls = URL.findall(docs.get(src, "")) + URL.findall(r.get("notes", ""))
        if reserved is not None and any(reserved.search(u) for u in urls):
            why["reserved source"] += 1
            continue
        if DOUBTS.search(r["notes"]):
            why["weights not the catalogue format (UD-Q*_XL mix, gpt-oss F16)"] += 1
            continue
        if src in EXCLUDED:
            why[f"excluded source: {EXCLUDED[src]}"] += 1
            continue
        if src not in docs:
            why["source without a SOURCES.md section"] += 1
            continue
        if src in shipped_sources:
            why["source already shipped"] += 1
            continue
        if r["metric"] not in METRICS or (r.get("load") or "static") != "static":
            why[f"metric {r['metric']} / load {r.get('load')}"] += 1
            continue
        if str(r.get("devices") or "1") != "1" or str(r.get("tp") or "1") != "1" or str(r.get("batch")) != "1":
            why["not one sequence on one device"] += 1
            continue
        if r["framework"] not in engines:
            why[f"engine {r['framework']}"] += 1
            continue
        try:
            model, _ = resolve_model(r["model"])
            load_hardware(r["hardware"])
            resolve_format(r["format"])
            if r.get("kv_format"):
                resolve_format(r["kv_format"])
        except CostModelError as e:
            why[f"not in the catalogue: {str(e).split(':')[0][:60]}"] += 1
            continue
        try:
            value = float(r["value"])
        except ValueError:
            why["value not a number"] += 1
            continue
        if not value > 0:
            why["value not positive"] += 1
            continue
        out = dict(r)
        # canonical ids (an alias spelling would otherwise hash to a new id)
        out.update(model=model.id, hardware=load_hardware(r["hardware"]).id, format=r["format"].strip().lower(),
                   kv_format=(r.get("kv_format") or "").strip().lower(), devices="1", tp="1", batch="1", load="static")
        for k in ("prompt_tokens", "output_tokens", "context_tokens"):
            out[k] = str(int(float(out.get(k) or 0)))
        out["id"] = row_id(out)
        if out["id"] in shipped_ids or out["id"] in seen:
            why["repeats a kept row"] += 1
            continue
        seen.add(out["id"])
        kept.append(out)
    return kept, why


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--reserved", default=str(RESERVED_FILE), help="the list of sources reserved for validation")
    a = ap.parse_args(argv)
    if not Path(a.reserved).is_file():
        print(f"--reserved {a.reserved}: no such file; the reserved list must be checked (pass its path)",
              file=sys.stderr)
        return 2
    reserved = reserved_patterns(Path(a.reserved).read_text())
    with DST.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, shipped_rows = reader.fieldnames, list(reader)
    shipped_sources = {r["source"] for r in shipped_rows}
    shipped_ids = {r["id"] for r in shipped_rows}
    total = []
    for folder in map(Path, a.folders):
        with (folder / "rows.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        seen = shipped_ids | {r["id"] for r in total}
        kept, why = select(rows, sections(folder / "SOURCES.md"), shipped_sources, seen, reserved)
        print(f"{folder}: {len(kept)} rows to add of {len(rows)} gathered, "
              f"{len({r['source'] for r in kept})} sources")
        for k, v in why.most_common():
            print(f"  skipped {v}: {k}")
        for k, v in sorted(collections.Counter((r["framework"], r["hardware"]) for r in kept).items()):
            print(f"  add {v}: {' / '.join(k)}")
        total += kept
    print(f"total: {len(total)} rows to add")
    if not a.dry_run and total:
        write_rows(header, total)
        append_docs(total, a.folders)
    return 0


def append_docs(rows: list[dict], folders: list[str]) -> None:
    """Append each new source's section (with its row count) to the sources file, once."""
    have = DOCS.read_text()
    docs = {}
    for folder in folders:
        docs.update(sections(Path(folder) / "SOURCES.md"))
    counts = collections.Counter(r["source"] for r in rows)
    with DOCS.open("a") as fh:
        for src, n in counts.items():
            if f"## {src} (" in have:
                continue
            fh.write(f"\n## {src} ({n} rows in this file)\nImported by `data/tools/import_llamabench.py` (issue 14: "
                     f"llama.cpp rows of new sources).\n{docs[src].strip()}\n")


if __name__ == "__main__":
    sys.exit(main())
