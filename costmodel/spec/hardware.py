"""Hardware specs: a frozen, validated `Hardware` per device, SI units, each figure sourced."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from costmodel.spec.catalog import Entry, index, resolve
from costmodel.errors import SpecError

DTYPES = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "fp6", "fp4", "int8", "int4")
FAMILIES = ("nvidia-datacenter", "nvidia-consumer", "nvidia-jetson", "amd-instinct", "amd-radeon",
            "google-tpu", "intel-gaudi", "intel-arc", "apple-gpu", "cpu")
KINDS = ("gpu", "cpu", "tpu", "npu")


@dataclass(frozen=True)
class Hardware:
    """One device. Peaks are dense FLOP/s (or OP/s) per datatype; bandwidths in B/s."""

    id: str
    name: str
    vendor: str
    family: str
    kind: str
    memory_bytes: float  # datasheet capacity (vendors' "80 GB" of HBM/GDDR/LPDDR is 80 GiB)
    memory_bandwidth: float
    peaks: Mapping[str, float]
    last_level_cache_bytes: float | None = None
    tdp_w: float | None = None
    tdp_scope: str = "device"  # what the TDP covers: device (accelerator board), module (SoC/superchip), system (wall)
    interconnect_bandwidth: float | None = None  # bidirectional per device
    interconnect_kind: str | None = None
    scale_up_domain: float | None = None  # devices one scale-up fabric (NVLink switch, Infinity Fabric) joins
    scale_out_bandwidth: float | None = None  # per device, one direction, between domains (its NIC)
    host_link_bandwidth: float | None = None  # to the host CPU and its memory, both directions (PCIe, NVLink-C2C)
    in_switch_allreduce: float | None = None  # all-reduce bus bandwidth with in-switch reduction (NVLS) / ring
    price_per_hour: float | None = None
    list_price_usd: float | None = None
    year: int | None = None
    memory_kind: str | None = None
    memory_reported_bytes: float | None = None  # total the driver reports (nvidia-smi, HIP)
    aliases: tuple = ()
    notes: str = ""
    file: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def memory_visible_bytes(self) -> float:
        """Capacity the runtime sizes its pools from: the driver's total where reported, else the datasheet."""
        return self.memory_reported_bytes or self.memory_bytes

    def peak(self, dtype: str) -> float | None:
        return self.peaks.get(dtype)

    def has(self, dtype: str) -> bool:
        return dtype in self.peaks


def hardware_from_entry(e: Entry) -> Hardware:
    """Validate one catalogue entry and convert it to SI."""
    sources: dict = {}

    def fig(name: str, kind: str, required: bool = False) -> float | None:
        got = e.figure(name, kind, required)
        if got is None:
            return None
        sources[name] = got[1]
        return got[0]

    name = e.require("name", str, "the device's full name")
    vendor = e.require("vendor", str, "the vendor's name")
    family = e.require("family", str, "one of " + ", ".join(FAMILIES))
    if family not in FAMILIES:
        raise SpecError(f"{e.where('family')}: got {family!r}; expected one of {', '.join(FAMILIES)}")
    kind = e.require("kind", str, "one of " + ", ".join(KINDS))
    if kind not in KINDS:
        raise SpecError(f"{e.where('kind')}: got {kind!r}; expected one of {', '.join(KINDS)}")
    peak_node = e.get("peak")
    if not isinstance(peak_node, dict) or "fp32" not in peak_node:
        raise SpecError(f"{e.where('peak')}: expected a mapping of datatype -> {{value, source}} "
                        f"including fp32 (datatypes: {', '.join(DTYPES)})")
    peaks = {}
    for dtype in peak_node:
        if dtype not in DTYPES:
            raise SpecError(f"{e.where('peak.' + dtype)}: unknown datatype; expected one of {', '.join(DTYPES)}")
        peaks[dtype] = fig(f"peak.{dtype}", "flops", required=True)
    ic_bw = fig("interconnect.bandwidth", "bandwidth")
    domain = fig("interconnect.domain", "devices")
    if domain is not None and (domain < 1 or not float(domain).is_integer()):
        raise SpecError(f"{e.where('interconnect.domain')}: {domain:g}; expected a whole number of devices >= 1")
    nvls = fig("interconnect.in_switch_allreduce", "ratio")
    if nvls is not None and nvls < 1:
        raise SpecError(f"{e.where('interconnect.in_switch_allreduce')}: {nvls:g}; expected a gain over ring >= 1 x")
    year = e.get("year")
    return Hardware(
        id=e.id.lower(),
        name=name,
        vendor=vendor,
        family=family,
        kind=kind,
        memory_bytes=fig("memory_capacity", "bytes", required=True),
        memory_bandwidth=fig("memory_bandwidth", "bandwidth", required=True),
        peaks=MappingProxyType(peaks),
        last_level_cache_bytes=fig("last_level_cache", "bytes"),
        tdp_w=fig("tdp", "power"),
        tdp_scope=_tdp_scope(e),
        interconnect_bandwidth=ic_bw,
        interconnect_kind=e.get("interconnect.kind") if ic_bw else None,
        scale_up_domain=domain,
        scale_out_bandwidth=fig("interconnect.scale_out", "bandwidth"),
        host_link_bandwidth=fig("interconnect.host", "bandwidth"),
        in_switch_allreduce=nvls,
        price_per_hour=fig("price.cloud", "usd_per_hour"),
        list_price_usd=fig("price.list", "usd"),
        year=int(year) if isinstance(year, int) else None,
        memory_kind=e.get("memory_kind"),
        memory_reported_bytes=fig("memory_reported", "bytes"),
        aliases=tuple(str(a).lower() for a in e.get("aliases") or ()),
        notes=str(e.get("notes") or "").strip(),
        file=str(e.file),
        sources=MappingProxyType(sources),
    )


TDP_SCOPES = ("device", "module", "system")


def _tdp_scope(e: Entry) -> str:
    scope = str(e.get("tdp_scope") or "device")
    if scope not in TDP_SCOPES:
        raise SpecError(f"{e.where('tdp_scope')}: got {scope!r}; expected one of {', '.join(TDP_SCOPES)}")
    return scope


def resolve_hardware(name: str) -> tuple[Hardware, str | None]:
    """(Hardware, id an alias resolved to or None) for an id, alias or YAML path."""
    return resolve("hardware", name, hardware_from_entry)


def load_hardware(name: str) -> Hardware:
    """The `Hardware` for an id (`h100-sxm`), alias (`h100`) or YAML path.

        >>> costmodel.load_hardware("h100").memory_bandwidth   # bytes/s
    """
    return resolve_hardware(name)[0]


def all_hardware() -> list[Hardware]:
    idx = index("hardware")
    return [load_hardware(i) for i in idx.ids()]
