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
