"""Find, read and index the YAML catalogue (hardware, models, formats, calibration).

Search order: directories in `COSTMODEL_PATH` (os.pathsep-separated; each may hold
`hardware/`, `models/`, ... sub-folders), then the user catalogue (`COSTMODEL_HOME`, else
`$XDG_CONFIG_HOME/costmodel`, else `~/.config/costmodel`: where `calibrate` installs a user's
profiled devices and calibrations so they stick), then the catalogue shipped with the package.
Earlier entries win on id clashes, so users override or add specs without touching code.
YAML is always read with safe loading.
"""
from __future__ import annotations

import contextvars
import copy
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from costmodel.errors import SpecError, not_a_file, unknown
from costmodel.spec import parse_cache
from costmodel.spec.files import read_text
from costmodel.spec.units import parse_quantity

_LIST_KEY = {"hardware": "devices", "models": "models", "formats": "formats"}

try:  # the C loader is ~10x faster; fall back to pure Python
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


def builtin_root() -> Path:
    """The shipped catalogue: `costmodel/_catalog` in a wheel, the repo root in a checkout."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "_catalog"
    return packaged if packaged.is_dir() else package.parent


def user_root() -> Path:
    """The persistent user catalogue (it may not exist yet)."""
    return Path(_user_root_str())


def _user_root_str() -> str:
    return _user_root(os.environ.get("COSTMODEL_HOME"), os.environ.get("XDG_CONFIG_HOME"), os.environ.get("HOME"))


@functools.lru_cache(maxsize=16)
def _user_root(costmodel_home, xdg_config_home, home) -> str:
    if costmodel_home:
        return str(Path(costmodel_home).expanduser())
    base = xdg_config_home or str(Path.home() / ".config")
    return str(Path(base).expanduser() / "costmodel")


def search_roots() -> list[Path]:
    roots = list(_path_roots(os.environ.get("COSTMODEL_PATH", "")))
    user = user_root()
    return roots + ([user] if user.is_dir() else []) + [builtin_root()]


CATALOGUE_FOLDERS = ("hardware", "models", "formats", "calibration")


@functools.lru_cache(maxsize=16)
def _path_roots(value: str) -> tuple:
    """COSTMODEL_PATH's folders, each checked once per value: an entry that is not a folder, or holds none of the
    catalogue's sub-folders, is named (it was ignored, and a user device in it reported as unknown)."""
    from costmodel.errors import SpecError

    roots = []
    for entry in value.split(os.pathsep):
        if not entry:
            continue
        root = Path(entry).expanduser()
        if not root.is_dir():
            raise SpecError(f"COSTMODEL_PATH entry {entry}: {'a file' if root.exists() else 'no such folder'}; "
                            f"expected a folder holding {', '.join(f + '/' for f in CATALOGUE_FOLDERS)}")
        if not any((root / sub).is_dir() for sub in CATALOGUE_FOLDERS):
            raise SpecError(f"COSTMODEL_PATH entry {entry}: holds none of "
                            f"{', '.join(f + '/' for f in CATALOGUE_FOLDERS)}; put spec files in those sub-folders")
        roots.append(root)
    return tuple(roots)


_SNAPSHOT: contextvars.ContextVar = contextvars.ContextVar("catalog_key", default=None)


def one_catalogue_state(fn):
    """Decorator: the wrapped call reads the catalogue as one state, so `catalog_key` (a stat of the
    user catalogue's folders) runs once per call instead of once per lookup."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _SNAPSHOT.get() is not None:
            return fn(*args, **kwargs)
        token = _SNAPSHOT.set(_catalog_key())
        try:
            return fn(*args, **kwargs)
        finally:
            _SNAPSHOT.reset(token)
    return wrapper


def catalog_key() -> tuple:
    """What the cached indexes depend on: the search path and the user catalogue's state (taken once
    per call of a function under `one_catalogue_state`)."""
    snap = _SNAPSHOT.get()
    return snap if snap is not None else _catalog_key()


def _catalog_key() -> tuple:
    user = _user_root_str()  # a str: a Path round trip costs more than the stats
    if not os.path.isdir(user):  # no user catalogue (most machines): one stat, not four failing ones
        return os.environ.get("COSTMODEL_PATH", ""), user, (0, 0, 0, 0)
    stamps = []
    for sub in ("hardware", "models", "formats", "calibration"):  # plain os calls: this runs per lookup
        folder = os.path.join(user, sub)
        try:
            stamps.append(os.stat(folder).st_mtime_ns)
            with os.scandir(folder) as entries:
                stamps.extend(e.stat().st_mtime_ns for e in entries)
        except OSError:
            stamps.append(0)
    return os.environ.get("COSTMODEL_PATH", ""), user, tuple(stamps)


def read_yaml(path: Path) -> Any:
    """Safe-load a YAML file; a syntax error becomes a SpecError naming file and line. Parsed
    documents are cached per file (parse_cache.py), each read returning a fresh copy."""
    cached = parse_cache.get(Path(path))
    if cached is not parse_cache.MISS:
        return cached
    doc = _parse_yaml(path)
    parse_cache.put(Path(path), doc)
    return doc


def _parse_yaml(path: Path) -> Any:
    text = read_text(path, "a YAML spec file", SpecError, max_bytes=MAX_YAML_BYTES)
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{path}{where}: malformed YAML ({problem})") from None
    if "*" in text and _expanded_size(doc) > MAX_YAML_NODES:
        raise SpecError(f"{path}: its anchors and aliases expand to more than {MAX_YAML_NODES:,} values; "
                        f"refusing (write the entries out, or use 'defaults:')")
    return doc


MAX_YAML_BYTES = 8 << 20  # 8 MiB: the largest shipped catalogue file is under 100 KiB
MAX_YAML_NODES = 200_000  # values after alias expansion ("billion laughs" stops here, fast)


def _expanded_size(doc: Any) -> int:
    """Values the document holds once aliases are expanded, counted up to just past the limit."""
    count, stack = 0, [doc]
    while stack and count <= MAX_YAML_NODES:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


@dataclass(frozen=True)
class Entry:
    """One catalogue entry (a device, a model, a format) with its file's sources."""

    data: dict
    file: Path
    sources: dict

    @property
    def id(self) -> str:
        return self.data["id"]

    def where(self, field: str) -> str:
        return f"{self.file} [{self.data.get('id', '?')}] field '{field}'"

    def get(self, field: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in field.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def require(self, field: str, types: type | tuple = object, expected: str = "") -> Any:
        value = self.get(field, _MISSING)
        if value is _MISSING:
            raise SpecError(f"{self.where(field)}: missing; expected {expected or 'a value'}")
        if not isinstance(value, types):
            raise SpecError(f"{self.where(field)}: got {value!r}; expected {expected or types}")
        return value

    def source_of(self, field: str, node: Any) -> str:
        """Resolve a figure's `source:` (a key of the file's `sources:` or a literal text)."""
        src = node.get("source") if isinstance(node, dict) else None
        if not isinstance(src, str) or not src.strip():
            raise SpecError(f"{self.where(field)}: has no source; every figure needs 'source:'")
        return str(self.sources.get(src, src))

    def figure(self, field: str, kind: str, required: bool = False) -> tuple[float, str] | None:
        """A sourced quantity `{value: '3.35 TB/s', source: ...}` -> (SI value, source text)."""
        node = self.get(field, _MISSING)
        if node is _MISSING or node is None:
            if required:
                raise SpecError(f"{self.where(field)}: missing; expected {{value: ..., source: ...}}")
            return None
        if not isinstance(node, dict) or "value" not in node:
            raise SpecError(f"{self.where(field)}: got {node!r}; expected {{value: ..., source: ...}}")
        value = parse_quantity(node["value"], kind, self.where(field))
        if value <= 0 and kind != "usd":
            raise SpecError(f"{self.where(field)}: {node['value']!r} must be positive")
        source = self.source_of(field, node)
        date = node.get("date")
        return value, (f"{source} (as of {date})" if date else source)


_MISSING = object()


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def entries_in_file(path: Path, kind: str) -> list[Entry]:
    """The entries a catalogue file defines, with `defaults:` merged in."""
    doc = read_yaml(path)
    key = _LIST_KEY[kind]
    if not isinstance(doc, dict) or not isinstance(doc.get(key), list):
        raise SpecError(f"{path}: expected a mapping with a '{key}:' list of entries")
    sources = doc.get("sources") or {}
    if not isinstance(sources, dict):
        raise SpecError(f"{path}: 'sources:' must map keys to URLs or texts")
    defaults = doc.get("defaults") or {}
    out = []
    for i, raw in enumerate(doc[key]):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"].strip():
            raise SpecError(f"{path}: entry {i + 1} of '{key}' has no 'id:' (expected a lowercase-with-dashes id)")
        out.append(Entry(_merge(defaults, raw), path, sources))
    return out


@dataclass(frozen=True)
class Index:
    """Ids and aliases of one kind of catalogue entry."""

    kind: str
    entries: dict  # id -> Entry
    aliases: dict  # alias -> id

    def resolve(self, name: str) -> tuple[Entry, str | None]:
        """Entry for an id or alias; the second item is the id an alias resolved to."""
        key = name.strip().lower()
        if key in self.entries:
            return self.entries[key], None
        if key in self.aliases:
            target = self.aliases[key]
            return self.entries[target], target
        singular = {"models": "model", "formats": "format"}.get(self.kind, self.kind)
        raise unknown(singular, name, list(self.entries) + list(self.aliases))

    def ids(self) -> list[str]:
        return sorted(self.entries)


def _folders(kind: str) -> Iterator[tuple[Path, list[Path]]]:
    """(folder, its YAML files) of `kind` under each search root, in search order; the files in the order
    of sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")), without pathlib's cost."""
    for root in search_roots():
        folder = root / kind
        try:
            names = os.listdir(folder)
        except OSError:  # no such folder (or not one)
            continue
        yield folder, [folder / n for suffix in (".yaml", ".yml")
                       for n in sorted(n for n in names if n.endswith(suffix))]


@functools.lru_cache(maxsize=None)
def _index_cached(kind: str, path_env: tuple) -> Index:
    entries: dict = {}
    aliases: dict = {}
    shadowed: list = []  # (id, entry) of later roots an earlier root's entry of the same id replaces
    for folder, files in _folders(kind):
        here: dict = {}
        for entry in _folder_entries(kind, folder, files):
            eid = entry.id.lower()
            if eid in here:  # two entries of one id in one folder: one would vanish in silence
                from costmodel.errors import SpecError

                raise SpecError(f"{entry.file}: id '{entry.id}' is defined twice in {folder} (also in "
                                f"{here[eid].file}); give each entry its own id")
            here[eid] = entry
            if eid in entries:  # an earlier root (COSTMODEL_PATH) wins
                shadowed.append((eid, entry))
                continue
            entries[eid] = entry
    for eid, entry in [*entries.items(), *shadowed]:  # a replaced entry's aliases still name the id (h100)
        for alias in entry.get("aliases") or []:
            aliases.setdefault(str(alias).lower(), eid)
    return Index(kind, entries, aliases)


def _folder_entries(kind: str, folder: Path, files: list) -> list[Entry]:
    """The entries of one folder's files, in order: from the index cache while every file is unchanged
    (parse_cache.get_index), else read from each file (and cached)."""
    if not files:
        return []
    stamps = _stamps(files)
    cached = parse_cache.get_index(kind, str(folder), stamps) if stamps is not None else parse_cache.MISS
    if cached is not parse_cache.MISS:
        paths = {str(p): p for p in files}
        return [Entry(data, paths[file], sources) for data, file, sources in cached]
    entries = [entry for path in files for entry in entries_in_file(path, kind)]
    if stamps is not None:
        parse_cache.put_index(kind, str(folder), stamps, [(e.data, str(e.file), e.sources) for e in entries])
    return entries


def _stamps(files: list) -> tuple | None:
    """What a folder's cached entries are valid for: each file's path, modification time (ns), size, inode
    and device (a re-pointed link or a replaced file of the same time and size differs in its inode), and
    the same of this module (whose code merges the entries). None where a file cannot be read: no cache."""
    try:
        return tuple((str(p), st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)
                     for p in (*files, __file__) for st in (os.stat(p),))
    except OSError:
        return None


def index(kind: str) -> Index:
    """The index of one catalogue kind (cached per COSTMODEL_PATH value)."""
    if kind not in _LIST_KEY:
        raise ValueError(kind)
    return _index_cached(kind, catalog_key())


def looks_like_path(name: str) -> bool:
    return name.endswith((".yaml", ".yml", ".json")) or os.sep in name or name.startswith(".")


def entry_from_file(path: str, kind: str) -> Entry:
    """A single entry from a user-given file (one device or model)."""
    p = Path(path).expanduser()
    problem = not_a_file(p)
    if problem:
        raise SpecError(f"{p}: {problem}; expected a spec file (YAML or JSON)")
    found = entries_in_file(p, kind)
    if len(found) != 1:
        ids = ", ".join(e.id for e in found)
        raise SpecError(f"{p}: holds {len(found)} entries ({ids}); pass a file with one, "
                        f"or put the file in a folder on COSTMODEL_PATH and use its id")
    return found[0]


def resolve(kind: str, name: str, from_entry, from_path=None) -> tuple[Any, str | None]:
    """(spec, id an alias resolved to or None) for an id, alias or spec path; cached.

    `from_entry` converts a catalogue Entry to a spec; `from_path` (default: a one-entry
    YAML file) loads a user-given path.
    """
    if not isinstance(name, str):  # None, a number: named, not an AttributeError (or a list's TypeError) inside
        from costmodel.errors import SpecError

        raise SpecError(f"{kind} {name!r}: expected a catalogue id, an alias or a spec file path (a str)")
    return _resolve_cached(kind, name, from_entry, from_path, catalog_key())


@functools.lru_cache(maxsize=None)
def _resolve_cached(kind, name, from_entry, from_path, path_env):
    if looks_like_path(name):
        if from_path is not None:
            return from_path(name), None
        return from_entry(entry_from_file(name, kind)), None
    entry, alias_of = index(kind).resolve(name)
    return from_entry(entry), alias_of
