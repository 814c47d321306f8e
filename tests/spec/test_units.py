import pytest

from costmodel.errors import UnitError
from costmodel.spec.units import format_si, format_time, parse_quantity


@pytest.mark.parametrize("text,kind,expected", [
    ("3.35 TB/s", "bandwidth", 3.35e12),
    ("900 GB/s", "bandwidth", 9e11),
    ("989.5 TFLOPS", "flops", 989.5e12),
    ("1,979 TOPS", "flops", 1.979e15),
    ("9 PFLOPS", "flops", 9e15),
    ("80 GB", "bytes", 80e9),
    ("50 MiB", "bytes", 50 * 2**20),
    ("700 W", "power", 700.0),
    ("1.2 kW", "power", 1200.0),
    ("3.49 USD/h", "usd_per_hour", 3.49),
    ("25000 USD", "usd", 25000.0),
])
def test_parse_quantity(text, kind, expected):
    assert parse_quantity(text, kind) == pytest.approx(expected)


@pytest.mark.parametrize("text,kind", [
    ("3.35 TB", "bandwidth"),     # bytes where a rate is expected
    (80, "bytes"),                # bare number
    ("fast", "flops"),
    ("700 GB", "power"),
    ("-5 GB", "bytes"),
])
def test_unit_errors_name_field_and_expectation(text, kind):
    with pytest.raises(UnitError) as info:
        parse_quantity(text, kind, "hw.yaml [x] field 'f'")
    msg = str(info.value)
    assert "hw.yaml [x] field 'f'" in msg and "expected" in msg


def test_format_roundtrip():
    assert format_si(3.35e12, "B/s") == "3.35 TB/s"
    assert format_time(0.0158) == "15.8 ms"
    assert format_time(2.5e-5) == "25 µs"
