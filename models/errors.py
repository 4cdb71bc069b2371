"""The one exception tree of the JointDNN harness (models, harness and server alike).

It lives in ``models`` because every package may import it: ``server`` depends on ``models`` only.

Every error the product raises on purpose derives from :class:`JointDNNError`; the CLI turns each into a
one-line message and a non-zero exit, the server maps them to 4xx/5xx JSON bodies, and nothing else
needs to know about the libraries underneath (TensorFlow, LiteRT, adbutils, httpx).

    JointDNNError
    ├── UsageError                  bad input from the user: fix the command and retry (CLI exit 2)
    │   ├── UnknownModelError       model name not in the zoo (lists the known ones)
    │   ├── InvalidCutError         a layer that is not a cut point (says why, names the nearest cuts)
    │   ├── ModelFileError          a user model file that is missing or corrupt
    │   ├── ProfileError            measured profile rows (CSV) that are missing, malformed or inconsistent
    │   ├── SpecError               a YAML spec (device, link) that is missing or invalid
    │   │   └── UnknownLinkError    a link spec name that does not exist
    │   ├── BundleError             a bundle directory / manifest that is missing or corrupt
    │   ├── DatasetError            a data set name or image folder that cannot be loaded
    │   └── DivergenceError         a streaming trainer diverged (unstable learning rate, fixed-point overflow)
    ├── CacheError                  the artifact cache cannot be read or written
    ├── ConversionError             Keras -> TFLite conversion failed
    ├── BackendError                no TFLite interpreter could be loaded / an interpreter failed
    ├── PlanError                   the planner could not produce a plan
    │   └── InfeasibleError         constraints cannot be met (names the constraint and the best value)
    ├── DeviceError                 a device misbehaved
    │   ├── DeviceNotFoundError     no device with that serial / no devices at all
    │   ├── DeviceDisconnectedError the device vanished mid-job (the job is resumable)
    │   ├── BenchmarkBinaryMissingError  no benchmark_model for the device's ABI
    │   └── BenchmarkOutputError    benchmark_model output that could not be parsed
    ├── LinkError                   traffic shaping could not be set up or measured
    └── ServerError                 the cloud server answered with an error (client side)
        ├── ServerUnavailableError  connection refused / timed out / 503 after retries
        └── ServerRejectedError     a 4xx: the request was wrong (status and detail attached)
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BenchmarkBinaryMissingError",
    "BenchmarkOutputError",
    "BundleError",
    "CacheError",
    "ConversionError",
    "DatasetError",
    "DeviceDisconnectedError",
    "DeviceError",
    "DeviceNotFoundError",
    "DivergenceError",
    "InfeasibleError",
    "InvalidCutError",
    "JointDNNError",
    "LinkError",
    "ModelFileError",
    "PlanError",
    "ProfileError",
    "ServerError",
    "ServerRejectedError",
    "ServerUnavailableError",
    "SpecError",
    "UnknownLinkError",
    "UnknownModelError",
    "UsageError",
]


class JointDNNError(Exception):
    """Base of every error the harness raises on purpose; its message is shown to the user as is."""

    exit_code: int = 1


class UsageError(JointDNNError):
    """The user's input was wrong; the message says what and how to fix it."""

    exit_code = 2


class UnknownModelError(UsageError):
    """A model name that the zoo does not know."""


class InvalidCutError(UsageError):
    """A layer (or segment index) that is not a valid cut point."""


class ModelFileError(UsageError):
    """A user-supplied model file that is missing, unreadable or corrupt."""


class ProfileError(UsageError):
    """Measured profile rows (CSV) that are missing, malformed or inconsistent."""


class SpecError(UsageError):
    """A YAML spec (device power model, wireless link) that is missing, unreadable or invalid."""


class UnknownLinkError(SpecError):
    """A wireless link spec name that does not exist."""


class BundleError(UsageError):
    """A bundle directory or manifest that is missing, corrupt or does not match its files."""


class DatasetError(UsageError):
    """A data set that is unknown, missing, or has too few images / classes to train on."""


class DivergenceError(UsageError):
    """A streaming trainer diverged: its learning rate is unstable for the data, or fixed point overflowed."""


class CacheError(JointDNNError):
    """The artifact cache directory cannot be created, read or written."""


class ConversionError(JointDNNError):
    """The TFLite converter failed on a segment."""


class BackendError(JointDNNError):
    """No TFLite interpreter is available, or one failed to load or run a model."""


class PlanError(JointDNNError):
    """The planner could not produce a plan."""


class InfeasibleError(PlanError):
    """The constraints cannot all be met.

    ``constraint`` names the one that cannot be met and ``best_achievable`` is the best value of that
    quantity over all schedules, so the user knows how far to relax it.
    """

    def __init__(self, message: str, *, constraint: str = "", best_achievable: float | None = None):
        super().__init__(message)
        self.constraint = constraint
        self.best_achievable = best_achievable


class DeviceError(JointDNNError):
    """A device (ADB, emulated or local) failed."""


class DeviceNotFoundError(DeviceError):
    """No device matches the requested serial, or none is connected."""


class DeviceDisconnectedError(DeviceError):
    """The device vanished mid-job; what was measured is kept and the job can be resumed."""


class BenchmarkBinaryMissingError(DeviceError):
    """``benchmark_model`` is not on the device and none was supplied for its ABI."""


class BenchmarkOutputError(DeviceError):
    """``benchmark_model`` printed something the parsers do not understand."""


class LinkError(JointDNNError):
    """Traffic shaping could not be set up, torn down or measured."""


class ServerError(JointDNNError):
    """The cloud server could not serve a request (seen from the client)."""


class ServerUnavailableError(ServerError):
    """The server could not be reached, timed out, or stayed overloaded (503) after retries."""


class ServerRejectedError(ServerError):
    """The server rejected the request with a 4xx; ``status`` and ``detail`` say why."""

    def __init__(self, message: str, *, status: int, detail: str = ""):
        super().__init__(message)
        self.status = status
        self.detail = detail
