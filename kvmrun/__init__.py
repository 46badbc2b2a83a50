"""kvmrun: boot raw and ELF guests straight on KVM, with the serial port on the terminal.

    import kvmrun
    kvmrun.run("build/guests/hello64.elf", timeout=5).expect(status=0, serial=rb"Hello")

Names are loaded on first use, so `kvmrun boot` does not pay for what it does not need.
"""
__version__ = "0.1.0"

_EXPORTS = {
    "run": "api", "Result": "api",
    "Reason": "outcome",
    "KvmrunError": "errors", "LoaderError": "errors", "ConfigError": "errors", "KvmUnavailable": "errors",
    "KvmError": "errors", "GuestMemoryError": "errors",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kvmrun' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
