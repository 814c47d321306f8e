"""spec/memo.by_identity: one computation per tuple of arguments (plain values by value, objects by
identity), a new object recomputed, errors never cached; efficiency_for and plan_compute follow a change
of the calibration tables."""
import pytest

from costmodel.spec.memo import by_identity


class Spec:  # an unhashable stand-in for a frozen spec
    __hash__ = None

    def __init__(self, x):
        self.x = x


def test_computed_once_per_object_and_plain_value():
    calls = []

    @by_identity()
    def f(spec, k):
        calls.append((spec, k))
        return spec.x * k

    a, b = Spec(2), Spec(2)
    assert f(a, 3) == 6 and f(a, 3) == 6 and len(calls) == 1
    assert f(a, 4) == 8 and len(calls) == 2  # another plain value
    assert f(b, 3) == 6 and len(calls) == 3  # an equal but different object
    assert f(a, "3") == "33" and len(calls) == 4  # plain values by value and type
    assert f(a, 1) == 2 and f(a, 1.0) == 2.0 and f(a, True) == 2 and len(calls) == 7
    built = "".join(["3", ""])  # an equal string that is another object: plain values compare by value
    assert f(a, built) == "33" and len(calls) == 7


def test_errors_are_not_cached_and_the_cache_starts_over_when_full():
    calls = []

    @by_identity(maxsize=2)
    def f(spec):
        calls.append(spec)
        if spec.x < 0:
            raise ValueError(spec.x)
        return spec.x

    bad = Spec(-1)
    for _ in range(2):
        with pytest.raises(ValueError):
            f(bad)
    assert len(calls) == 2
    specs = [Spec(i) for i in range(3)]
    assert [f(s) for s in specs] == [0, 1, 2]
    assert f(specs[2]) == 2 and len(calls) == 5  # the last entry survived the reset
    assert f(specs[0]) == 0 and len(calls) == 6  # the first was dropped with it


def test_a_dropped_object_id_is_not_mistaken_for_a_new_one():
    @by_identity(maxsize=1)
    def f(spec):
        return spec.x

    assert f(Spec(1)) == 1
    assert f(Spec(2)) == 2  # may reuse the first object's id: the entry holds its object, so it cannot


def test_efficiency_follows_a_users_calibration_file(tmp_path, monkeypatch):
    from costmodel.spec.engine_params import efficiency_for

    monkeypatch.setenv("COSTMODEL_HOME", str(tmp_path))
    before = efficiency_for("h100-sxm", "nvidia", "vllm")
    assert efficiency_for("h100-sxm", "nvidia", "vllm") is before  # the same tables: the same object
    (tmp_path / "calibration").mkdir()
    (tmp_path / "calibration" / "mine.yaml").write_text(
        "engines:\n  vllm:\n    devices:\n      h100-sxm:\n        memory_efficiency: {value: 0.5, source: a test}\n")
    after = efficiency_for("h100-sxm", "nvidia", "vllm")
    assert after.memory_efficiency == 0.5 != before.memory_efficiency
