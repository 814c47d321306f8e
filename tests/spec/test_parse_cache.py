"""The parsed-YAML cache: hits, invalidation on change, no code from a tampered pickle, optional."""
import os
import pickle

import pytest

from costmodel.errors import SpecError
from costmodel.spec import catalog, parse_cache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("COSTMODEL_NO_PARSE_CACHE", raising=False)
    return tmp_path / "cache"


def test_second_read_comes_from_the_cache_and_a_change_invalidates_it(tmp_path, cache, monkeypatch):
    f = tmp_path / "a.yaml"
    f.write_text("x: 1\ndate: 2026-09-25\n")
    assert catalog.read_yaml(f)["x"] == 1
    assert len(list((cache / "yaml").glob("*.pickle"))) == 1

    def no_parse(path):
        raise AssertionError("parsed again")

    monkeypatch.setattr(catalog, "_parse_yaml", no_parse)
    doc = catalog.read_yaml(f)
    assert doc["x"] == 1 and str(doc["date"]) == "2026-09-25"
    doc["x"] = 99  # each read is a fresh copy
    assert catalog.read_yaml(f)["x"] == 1
    monkeypatch.undo()
    monkeypatch.setenv("COSTMODEL_CACHE", str(cache))
    f.write_text("x: 22\n")  # new size and time: parsed again
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert catalog.read_yaml(f)["x"] == 22


def test_a_tampered_cache_runs_no_code(tmp_path, cache):
    f = tmp_path / "b.yaml"
    f.write_text("y: 2\n")
    catalog.read_yaml(f)
    slot, key = parse_cache._slot(f)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    slot.write_bytes(pickle.dumps((key, Evil())))
    assert catalog.read_yaml(f) == {"y": 2}  # the source is parsed instead
    assert not (tmp_path / "pwned").exists()


def test_malformed_yaml_is_never_cached_and_still_named(tmp_path, cache):
    f = tmp_path / "c.yaml"
    f.write_text("a: [1, 2\n")
    for _ in range(2):
        with pytest.raises(SpecError, match="c.yaml:.*malformed YAML"):
            catalog.read_yaml(f)
    assert not list((cache / "yaml").glob("*.pickle")) if (cache / "yaml").exists() else True


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("COSTMODEL_CACHE", str(blocker))
    f = tmp_path / "d.yaml"
    f.write_text("z: 3\n")
    assert catalog.read_yaml(f) == {"z": 3}
    monkeypatch.setenv("COSTMODEL_NO_PARSE_CACHE", "1")
    assert parse_cache.get(f) is parse_cache.MISS


def _kind_folder(tmp_path, monkeypatch, text: str):
    root = tmp_path / "cat"
    (root / "formats").mkdir(parents=True)
    f = root / "formats" / "mine.yaml"
    f.write_text(text)
    monkeypatch.setenv("COSTMODEL_PATH", str(root))
    catalog._index_cached.cache_clear()
    return f


def _slot_of(cache, folder):
    return cache / "index" / f"formats-{parse_cache._name(str(folder))}.pickle"


FORMAT = "formats:\n  - id: {id}\n    aliases: [{alias}]\n    w_bits: 4\n"


def _fresh_index():
    catalog._index_cached.cache_clear()
    return catalog.index("formats")


def test_an_index_comes_from_its_cache_until_a_file_changes(tmp_path, cache, monkeypatch):
    """A catalogue folder's entries are read from one cached file (no catalogue file read) while its files
    keep their times, sizes and inodes; an edit (even of the same size), a new file, a removed one or a
    re-pointed link rebuilds them."""
    f = _kind_folder(tmp_path, monkeypatch, FORMAT.format(id="my-fmt", alias="mf"))
    first = catalog.index("formats")
    assert first.resolve("mf")[1] == "my-fmt" and _slot_of(cache, f.parent).is_file()

    def no_read(path, kind):
        raise AssertionError(f"{path} read again")

    monkeypatch.setattr(catalog, "entries_in_file", no_read)
    again = _fresh_index()
    assert again.entries.keys() == first.entries.keys() and again.aliases == first.aliases
    entry = again.entries["my-fmt"]
    assert entry.file == f and entry.data == first.entries["my-fmt"].data
    assert entry.sources == first.entries["my-fmt"].sources
    monkeypatch.undo()
    monkeypatch.setenv("COSTMODEL_CACHE", str(cache))
    monkeypatch.setenv("COSTMODEL_PATH", str(f.parent.parent))
    f.write_text(FORMAT.format(id="my-fmu", alias="mf"))  # the same size: only its time differs
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert "my-fmu" in _fresh_index().entries and "my-fmt" not in _fresh_index().entries
    (f.parent / "other.yaml").write_text(FORMAT.format(id="other-fmt", alias="of"))
    assert "other-fmt" in _fresh_index().entries
    (f.parent / "other.yaml").unlink()
    assert "other-fmt" not in _fresh_index().entries
    catalog._index_cached.cache_clear()


def test_a_relinked_file_of_the_same_time_and_size_is_read_again(tmp_path, cache, monkeypatch):
    """A link re-pointed to another file of the same size and time (a deployment switching versions)
    differs in its inode: not served from the cache."""
    f = _kind_folder(tmp_path, monkeypatch, "")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(FORMAT.format(id="fmt-aaa", alias="fa"))
    b.write_text(FORMAT.format(id="fmt-bbb", alias="fb"))
    for x in (a, b):
        os.utime(x, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    f.unlink()
    f.symlink_to(a)
    assert "fmt-aaa" in _fresh_index().entries
    f.unlink()
    f.symlink_to(b)
    got = _fresh_index().entries
    assert "fmt-bbb" in got and "fmt-aaa" not in got
    catalog._index_cached.cache_clear()


def test_a_tampered_index_runs_no_code(tmp_path, cache, monkeypatch):
    f = _kind_folder(tmp_path, monkeypatch, FORMAT.format(id="my-fmt", alias="mf"))
    catalog.index("formats")
    slot = _slot_of(cache, f.parent)
    key, _ = pickle.loads(slot.read_bytes())

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    slot.write_bytes(pickle.dumps((key, Evil())))
    assert "my-fmt" in _fresh_index().entries  # read from the files instead
    assert not (tmp_path / "pwned").exists()
    catalog._index_cached.cache_clear()
