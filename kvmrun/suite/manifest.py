"""The TOML manifest: [defaults] and [[guest]] tables, checked key by key before anything runs.

Boot options take the same values, and are refused for the same reasons, as `kvmrun boot` and
`kvmrun.run`: one definition of each (kvmrun.options) serves all three. Each guest's image is read
and planned with its options here too, so a manifest `kvmrun boot` would refuse fails before any guest
runs, naming the file, the guest and the key.
"""
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import ConfigError, KvmrunError
from ..options import BY_NAME, OptionError, boot_config, parse_option
from ..outcome import Reason, parse_reason

DEFAULT_MANIFEST = "kvmrun.toml"
DEFAULT_TIMEOUT = 10.0            # a guest that never ends must not hang the suite
# The reasons a manifest can expect: the ways a guest ends by itself, or by running out of time.
EXPECTABLE_REASONS = (Reason.HALTED, Reason.EXIT_PORT, Reason.RESET, Reason.FAULT, Reason.TIMEOUT,
                      Reason.BREAKPOINT)


class ManifestError(ConfigError):
    """A manifest that cannot be run: the message names the file, the guest and the key."""


@dataclass(frozen=True)
class GuestSpec:
    name: str
    image: str                    # absolute, resolved against the manifest's folder: where it is opened
    options: Dict[str, Any] = field(default_factory=dict)   # kvmrun.run keyword arguments
    expect_status: Optional[int] = 0       # None: not checked (an expect_reason without a status)
    expect_serial: Optional[str] = None
    expect_reason: Optional[str] = None    # a Reason's value
    expect_screen: Optional[str] = None    # a regular expression searched in the screen's text
    image_written: Optional[str] = None    # the image as the manifest writes it: what the guest is told
    group: Optional[str] = None            # one worker runs a group (kvmrun test; pytest-xdist --dist loadgroup)
    markers: Tuple[str, ...] = ()          # pytest marks, for -m
    results: Optional[str] = None          # "tap" or "ktap": its serial output read for test points (tap.py)


def _non_empty_string(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, not {value!r}")
    return value


def _image(value) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be a path (a non-empty string), not {value!r}")
    return value


def _stdin(value) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {value!r}")
    return value.encode()


def _expect_status(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise ValueError(f"must be an exit status from 0 to 255, not {value!r}")
    return value


def _expect_serial(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a regular expression (a string), not {value!r}")
    from ..api import serial_pattern         # compiled exactly as it is matched: bytes, MULTILINE
    try:
        serial_pattern(value)
    except re.error as err:
        raise ValueError(f"is not a regular expression: {err}") from None
    return value


def _expect_screen(value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a regular expression (a string), not {value!r}")
    try:
        re.compile(value, re.MULTILINE)
    except re.error as err:
        raise ValueError(f"is not a regular expression: {err}") from None
    return value


def _expect_reason(value) -> str:
    try:
        reason = parse_reason(value) if isinstance(value, str) else None
    except ValueError:
        reason = None
    if reason not in EXPECTABLE_REASONS:
        names = ", ".join(repr(r.value) for r in EXPECTABLE_REASONS)
        raise ValueError(f"must be one of {names}, not {value!r}")
    assert reason is not None
    return reason.value


_MARKER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _markers(value) -> Tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(name, str) and _MARKER_NAME.match(name) for name in value):
        raise ValueError(f"must be a list of pytest mark names (identifiers, as in -m), not {value!r}")
    return tuple(value)


def _results(value) -> str:
    from .tap import KINDS
    if value not in KINDS:
        raise ValueError(f"must be one of {', '.join(map(repr, KINDS))}, not {value!r}")
    return value


# Keys beside the boot options, each with its parser (ValueError(problem) when wrong).
_GUEST_ONLY: Dict[str, Callable[[Any], Any]] = {"name": _non_empty_string, "image": _image}
_TEST_KEYS: Dict[str, Callable[[Any], Any]] = {
    "stdin": _stdin, "expect_status": _expect_status, "expect_serial": _expect_serial,
    "expect_reason": _expect_reason, "expect_screen": _expect_screen, "group": _non_empty_string, "markers": _markers,
    "results": _results,
}
# Boot options a suite's guest cannot use.
NOT_IN_SUITES = {"gdb": "is for `kvmrun boot --gdb`: a suite's guest would wait for a debugger nobody attaches"}
DEFAULTS_KEYS = sorted([*BY_NAME, *_TEST_KEYS])
GUEST_KEYS = sorted([*_GUEST_ONLY, *BY_NAME, *_TEST_KEYS])


def load_manifest(path: str) -> List[GuestSpec]:
    manifest = Path(path)
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest (kvmrun test looks for {DEFAULT_MANIFEST} by default)") \
            from None
    except IsADirectoryError:
        raise ManifestError(f"{path}: is a directory, not a manifest") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ManifestError(f"{path}: cannot read it: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(f"{path}: invalid TOML: {err}") from None
    unknown = set(data) - {"defaults", "guest"}
    if unknown:
        raise ManifestError(f"{path}: unknown table or key {sorted(unknown)[0]!r} (expected [defaults] and "
                            "[[guest]])")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ManifestError(f"{path}: [defaults] must be a table")
    _refuse_unknown_keys(path, "[defaults]", defaults, DEFAULTS_KEYS)
    _check_values(path, "[defaults]", defaults)
    guests = data.get("guest", [])
    if not isinstance(guests, list) or not guests:
        raise ManifestError(f"{path}: no [[guest]] entries")
    specs, seen = [], set()
    for index, entry in enumerate(guests):
        where = f"guest #{index + 1}"
        if not isinstance(entry, dict):
            raise ManifestError(f"{path}: {where}: must be a table")
        if isinstance(entry.get("name"), str) and entry["name"].strip():
            where = f"guest {entry['name']!r}"
        _refuse_unknown_keys(path, where, entry, GUEST_KEYS)
        for required in ("name", "image"):
            if required not in entry:
                raise ManifestError(f"{path}: {where}: missing key {required!r}")
        _check_values(path, where, entry)
        if entry["name"] in seen:
            raise ManifestError(f"{path}: {where}: the name is used twice")
        seen.add(entry["name"])
        specs.append(_spec(path, manifest.parent, where, {**defaults, **entry}))
    return specs


def _refuse_unknown_keys(path: str, where: str, table: dict, allowed: List[str]) -> None:
    for key in table:
        if key not in allowed:
            import difflib
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ManifestError(f"{path}: {where}: unknown key {key!r}{hint}")


def _check_values(path: str, where: str, table: dict) -> None:
    """Each value on its own, as kvmrun boot and kvmrun.run would check it."""
    for key, value in table.items():
        if key in NOT_IN_SUITES:
            raise ManifestError(f"{path}: {where}: {key!r} {NOT_IN_SUITES[key]}")
        try:
            if key in BY_NAME:
                parse_option(key, value)
            else:
                {**_GUEST_ONLY, **_TEST_KEYS}[key](value)
        except OptionError as err:
            raise ManifestError(f"{path}: {where}: {err.spelled(repr(key))}") from None
        except ValueError as err:
            raise ManifestError(f"{path}: {where}: {key!r} {err}") from None


def _spec(path: str, folder: Path, where: str, entry: dict) -> GuestSpec:
    """The guest's spec, its image, modules, disk and trace file found from the manifest's folder. The guest
    is told their paths as the manifest writes them (a multiboot command line starts with the kernel's, a module's
    string with its own), so what it prints does not depend on where the manifest lies."""
    image = (folder / entry["image"]).resolve()
    options = {name: entry[name] for name in BY_NAME if name in entry}
    options.setdefault("timeout", DEFAULT_TIMEOUT)
    if "modules" in options:
        try:
            specs = parse_option("modules", options["modules"])
        except OptionError as err:
            raise ManifestError(f"{path}: {where}: {err.spelled(repr('modules'))}") from None
        options["modules"] = tuple(spec._replace(path=str((folder / spec.path).resolve()), written=spec.path)
                                   for spec in specs)
    if isinstance(options.get("disk"), str) and options["disk"]:
        options["disk"] = str((folder / options["disk"]).resolve())     # a boot sector's disk, beside it
    if isinstance(options.get("trace_file"), str) and options["trace_file"]:
        options["trace_file"] = str((folder / options["trace_file"]).resolve())
    from ..boot.image import ModuleError
    from ..debug.symbols import UntilError
    try:
        config = boot_config(image, options, image_written=entry["image"])
        _refuse_what_boot_would(config)
    except OptionError as err:
        raise ManifestError(f"{path}: {where}: {err.spelled(repr(err.option))}") from None
    except UntilError as err:
        raise ManifestError(f"{path}: {where}: 'until' {entry['until']!r}: {err.problem}") from None
    except ModuleError as err:
        looked = f" (looked at {err.file})" if err.problem == "no such file" else ""
        raise ManifestError(f"{path}: {where}: 'modules' {err.shown!r}: {err.problem}{looked}") from None
    except KvmrunError as err:
        problem = str(err).removeprefix(f"{image}: ")
        where_found = f" (looked at {image})" if problem == "no such file" else ""
        raise ManifestError(f"{path}: {where}: 'image' {entry['image']!r}: {problem}{where_found}") from None
    expect_reason = _expect_reason(entry["expect_reason"]) if "expect_reason" in entry else None
    if "expect_status" in entry:
        expect_status: Optional[int] = entry["expect_status"]
    else:
        expect_status = 0 if expect_reason is None else None
    run_options: Dict[str, Any] = {name: getattr(config, name) for name in options}
    if "stdin" in entry:
        run_options["stdin"] = _stdin(entry["stdin"])
    return GuestSpec(name=entry["name"], image=str(image), options=run_options, expect_status=expect_status,
                     expect_serial=entry.get("expect_serial"), expect_reason=expect_reason,
                     expect_screen=entry.get("expect_screen"), image_written=entry["image"],
                     group=entry.get("group"), markers=_markers(entry["markers"]) if "markers" in entry else (),
                     results=entry.get("results"))


def refuse_what_this_host_cannot(path: str, specs: List[GuestSpec], max_vcpus: int) -> None:
    """What only the host's KVM can refuse, before any guest runs: more vCPUs than it allows."""
    for spec in specs:
        cpus = spec.options.get("cpus", 1)
        if cpus > max_vcpus:
            raise ManifestError(f"{path}: guest {spec.name!r}: 'cpus' must be at most {max_vcpus} on this "
                                f"host's KVM, not {cpus}")


def _refuse_what_boot_would(config) -> None:
    """The image read and planned with its options, as `kvmrun boot` does before it opens /dev/kvm."""
    from ..boot.prepare import plan_boot
    plan_boot(config, one_gib_pages=True)
    if config.until is not None:
        from ..debug.session import check_debugging
        check_debugging(config)
