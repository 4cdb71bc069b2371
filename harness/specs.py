"""Typed, validated YAML specs: wireless links and device power models.

A *spec* describes (YAML, written by hand); a *profile* is measured rows (:mod:`models.profile_rows`).
Built-in specs ship in the ``device_profiles`` package (``links/*.yaml``, ``devices/*.yaml``); users
add their own by passing a path to a YAML file instead of a name, or by dropping files into
``./device_profiles/{links,devices}/`` in the working directory (those win over the built-ins).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from harness.links import radio
from models.errors import SpecError, UnknownLinkError

__all__ = [
    "CpuClusterSpec",
    "DeviceSpec",
    "LinkSpec",
    "builtin_profiles_dir",
    "device_names",
    "link_names",
    "load_device",
    "load_link",
]


class LinkSpec(BaseModel):
    """A wireless link: bandwidths, round trip, and the radio power model P = alpha * Mbps + beta."""

    name: str
    aliases: list[str] = Field(default_factory=list)
    up_mbps: float = Field(gt=0)
    down_mbps: float = Field(gt=0)
    rtt_ms: float = Field(ge=0)
    alpha_up_mw_per_mbps: float = Field(ge=0)
    alpha_down_mw_per_mbps: float = Field(ge=0)
    beta_mw: float = Field(ge=0)
    source: str = ""
    # bytes per transfer that pass at line rate, not serialised (a shaper's token bucket; 0 for a radio)
    up_burst_bytes: float = Field(default=0.0, ge=0)
    down_burst_bytes: float = Field(default=0.0, ge=0)

    def upload_ms(self, nbytes: int) -> float:
        """Serialisation time of ``nbytes`` on the uplink (ms), without the round trip."""
        return radio.serial_ms(float(nbytes), self.up_mbps, self.up_burst_bytes)

    def download_ms(self, nbytes: int) -> float:
        """Serialisation time of ``nbytes`` on the downlink (ms), without the round trip."""
        return radio.serial_ms(float(nbytes), self.down_mbps, self.down_burst_bytes)

    @property
    def upload_power_mw(self) -> float:  # radio power while sending at full uplink rate
        return radio.radio_power_mw(self.up_mbps, self.alpha_up_mw_per_mbps, self.beta_mw)

    @property
    def download_power_mw(self) -> float:  # radio power while receiving at full downlink rate
        return radio.radio_power_mw(self.down_mbps, self.alpha_down_mw_per_mbps, self.beta_mw)

    def with_bandwidth(self, up_mbps: float, down_mbps: float | None = None) -> LinkSpec:
        """A copy with other bandwidths (for sweeps)."""
        return self.model_copy(update={"up_mbps": up_mbps, "down_mbps": down_mbps or self.down_mbps})


class CpuClusterSpec(BaseModel):
    """One CPU cluster (CPUs sharing a clock) as cpufreq shows it: frequency range and governor."""

    cpus: int = Field(ge=1)  # CPUs in the cluster; clusters are numbered in order (cpu0.. first)
    min_khz: int = Field(gt=0)  # cpuinfo_min_freq
    max_khz: int = Field(gt=0)  # cpuinfo_max_freq
    governor: str = "schedutil"


class DeviceSpec(BaseModel):
    """A device's facts and power model (mW); energy in mJ = mW * s."""

    name: str
    model: str = "unknown"
    manufacturer: str = "unknown"
    abi: str = "arm64-v8a"
    sdk: int = 34
    release: str = "14"
    cpu_count: int = Field(default=8, ge=1)
    idle_mw: float = Field(ge=0)
    active_mw: float = Field(ge=0)
    per_extra_thread_mw: float = Field(default=0.0, ge=0)
    waiting_mw: float = Field(default=0.0, ge=0)
    battery_voltage_v: float = Field(default=3.85, gt=0)
    battery_capacity_mah: float = Field(default=4000, gt=0)
    # How many times slower than this host the emulated phone computes. Emulation only: LocalDevice and
    # the emulated Android device pad each inference's measured time t with (slowdown - 1) * t of sleep
    # while drawing compute power, and report the padded time; a real phone over ADB ignores it.
    compute_slowdown: float = Field(default=1.0, ge=1.0)
    source: str = ""
    # Emulation only (the emulated Android device's cpufreq and thermal sysfs trees; a real phone ignores
    # them). CPU clusters in cpu order; empty = one cluster of cpu_count CPUs at 300 MHz..2.4 GHz.
    cpu_clusters: list[CpuClusterSpec] = Field(default_factory=list)
    # First-order RC thermal model of the SoC: C dT/dt = P - (T - ambient) / R, P = the load power (W).
    ambient_c: float = 25.0
    thermal_resistance_c_per_w: float = Field(default=10.0, gt=0)  # steady rise per watt (°C/W)
    thermal_capacitance_j_per_c: float = Field(default=6.0, gt=0)  # heat capacity (J/°C); tau = R*C s
    trip_c: float = 85.0  # above this the frequency cap drops (thermal throttling)
    trip_hysteresis_c: float = Field(default=5.0, ge=0)  # the cap comes back below trip_c - this
    throttled_freq_ratio: float = Field(default=0.5, gt=0, le=1)  # frequency cap / max while throttled

    @model_validator(mode="after")
    def _clusters_cover_cpus(self) -> DeviceSpec:
        if self.cpu_clusters and sum(c.cpus for c in self.cpu_clusters) != self.cpu_count:
            raise ValueError(
                f"cpu_clusters hold {sum(c.cpus for c in self.cpu_clusters)} CPUs, cpu_count is {self.cpu_count}"
            )
        for cluster in self.cpu_clusters:
            if cluster.min_khz > cluster.max_khz:
                raise ValueError(f"cpu cluster min_khz {cluster.min_khz} exceeds max_khz {cluster.max_khz}")
        return self

    def clusters(self) -> list[CpuClusterSpec]:
        """The CPU clusters, in cpu order (one default cluster when the spec names none)."""
        return self.cpu_clusters or [CpuClusterSpec(cpus=self.cpu_count, min_khz=300_000, max_khz=2_400_000)]

    # Energy of reading one byte of weights from DRAM (pJ/byte); 0 = not modelled. The planner charges
    # every mobile segment weight bytes x this per pass (models.smartdeal makes the bytes fewer).
    dram_pj_per_byte: float = Field(default=0.0, ge=0)
    dram_source: str = ""

    def memory_energy_mj(self, weight_bytes: float) -> float:
        """Energy of reading ``weight_bytes`` of weights from DRAM once (mJ)."""
        return self.dram_pj_per_byte * weight_bytes * 1e-9

    def compute_power_mw(self, threads: int = 1) -> float:
        """Power above idle while ``threads`` inference threads compute."""
        return self.active_mw + self.per_extra_thread_mw * max(threads - 1, 0)

    def compute_energy_mj(self, latency_ms: float, threads: int = 1) -> float:
        """Energy above idle of computing for ``latency_ms`` (mJ)."""
        return self.compute_power_mw(threads) * latency_ms / 1e3


def builtin_profiles_dir() -> Path:
    """The folder of the installed ``device_profiles`` package."""
    import device_profiles

    return Path(device_profiles.__file__).parent


def _search_dirs(kind: str) -> list[Path]:
    return [Path.cwd() / "device_profiles" / kind, builtin_profiles_dir() / kind]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read profile {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"profile {path} must be a YAML mapping")
    return data


def _names(kind: str) -> dict[str, Path]:
    """Name and alias -> file, built-ins first so that local files override them."""
    found: dict[str, Path] = {}
    for folder in reversed(_search_dirs(kind)):
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            try:
                data = _read_yaml(path)
            except SpecError:
                continue
            for name in [str(data.get("name", path.stem)), *map(str, data.get("aliases", []))]:
                found[name.lower()] = path
    return found


def link_names() -> list[str]:
    """Canonical names of every link spec that can be loaded by name."""
    return sorted({str(_read_yaml(p).get("name", p.stem)) for p in _names("links").values()})


def device_names() -> list[str]:
    """Canonical names of every device power spec that can be loaded by name."""
    return sorted({str(_read_yaml(p).get("name", p.stem)) for p in _names("devices").values()})


def _load(kind: str, name_or_path: str | Path) -> tuple[Path, dict[str, Any]]:
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"}:
        if not candidate.is_file():
            raise SpecError(f"profile file {candidate} does not exist")
        return candidate, _read_yaml(candidate)
    path = _names(kind).get(str(name_or_path).lower())
    if path is None:
        known = ", ".join(link_names() if kind == "links" else device_names())
        error = UnknownLinkError if kind == "links" else SpecError
        raise error(
            f"unknown {kind[:-1]} profile {str(name_or_path)!r}; known: {known} (or give a .yaml path)"
        )
    return path, _read_yaml(path)


def load_link(name_or_path: str | Path) -> LinkSpec:
    """Load a link spec by name/alias (``3g``, ``4G``, ``lte``, ``wifi``) or from a YAML path."""
    path, data = _load("links", name_or_path)
    try:
        return LinkSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"link profile {path} is invalid: {_first_error(exc)}") from None


def load_device(name_or_path: str | Path) -> DeviceSpec:
    """Load a device power spec by name or from a YAML path."""
    path, data = _load("devices", name_or_path)
    try:
        return DeviceSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"device profile {path} is invalid: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(map(str, err['loc']))}: {err['msg']}"
