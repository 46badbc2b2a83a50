"""The TOML manifest: [defaults] and [[guest]] tables, checked key by key before anything runs."""
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import ConfigError
from ..sizes import parse_size

DEFAULT_MANIFEST = "kvmrun.toml"
DEFAULT_TIMEOUT = 10.0            # a guest that never ends must not hang the suite

# key -> (accepted Python types, description for errors)
_RUN_KEYS = {
    "memory": ((str, int), "a size such as \"64M\""),
    "timeout": ((int, float), "a number of seconds"),
    "cpus": ((int,), "an integer"),
    "mode": ((str,), "one of \"real\", \"protected\", \"long\""),
    "load_addr": ((int, str), "an address (integer or \"0x...\")"),
    "entry": ((int, str), "an address (integer or \"0x...\")"),
    "strict_io": ((bool,), "true or false"),
    "stdin": ((str,), "a string"),
    "expect_status": ((int,), "an integer"),
    "expect_serial": ((str,), "a regular expression (string)"),
}
_GUEST_KEYS = {"name": ((str,), "a string"), "image": ((str,), "a path (string)"), **_RUN_KEYS}


class ManifestError(ConfigError):
    """A manifest that cannot be run: the message names the file, the guest and the key."""


@dataclass(frozen=True)
class GuestSpec:
    name: str
    image: str                    # absolute, resolved against the manifest's folder
    options: Dict[str, Any] = field(default_factory=dict)   # kvmrun.run keyword arguments
    expect_status: int = 0
    expect_serial: Optional[str] = None


def load_manifest(path: str) -> List[GuestSpec]:
    manifest = Path(path)
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest (kvmrun test looks for {DEFAULT_MANIFEST} by default)") \
            from None
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
    _check_keys(path, "[defaults]", defaults, _RUN_KEYS)
    guests = data.get("guest", [])
    if not isinstance(guests, list) or not guests:
        raise ManifestError(f"{path}: no [[guest]] entries")
    specs, seen = [], set()
    for index, entry in enumerate(guests):
        where = f"guest #{index + 1}"
        if not isinstance(entry, dict):
            raise ManifestError(f"{path}: {where}: must be a table")
        if "name" in entry and isinstance(entry["name"], str):
            where = f"guest {entry['name']!r}"
        _check_keys(path, where, entry, _GUEST_KEYS)
        for required in ("name", "image"):
            if required not in entry:
                raise ManifestError(f"{path}: {where}: missing key {required!r}")
        if entry["name"] in seen:
            raise ManifestError(f"{path}: {where}: the name is used twice")
        seen.add(entry["name"])
        specs.append(_spec(path, manifest.parent, where, {**defaults, **entry}))
    return specs


def _check_keys(path: str, where: str, table: dict, allowed: dict) -> None:
    for key, value in table.items():
        if key not in allowed:
            raise ManifestError(f"{path}: {where}: unknown key {key!r}")
        types, description = allowed[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ManifestError(f"{path}: {where}: {key!r} must be {description}, not {value!r}")


def _spec(path: str, folder: Path, where: str, entry: dict) -> GuestSpec:
    image = (folder / entry["image"]).resolve()
    if not image.is_file():
        raise ManifestError(f"{path}: {where}: 'image' {entry['image']!r} does not exist (looked at {image})")
    options: Dict[str, Any] = {"timeout": float(entry.get("timeout", DEFAULT_TIMEOUT))}
    if options["timeout"] <= 0:
        raise ManifestError(f"{path}: {where}: 'timeout' must be positive, not {entry['timeout']!r}")
    if "memory" in entry:
        try:
            options["memory"] = parse_size(entry["memory"])
        except ValueError:
            raise ManifestError(f"{path}: {where}: 'memory' must be a size such as \"64M\", "
                                f"not {entry['memory']!r}") from None
    for key in ("load_addr", "entry"):
        if key in entry:
            value = entry[key]
            try:
                options[key] = int(value, 0) if isinstance(value, str) else value
            except ValueError:
                raise ManifestError(f"{path}: {where}: {key!r} must be an address, not {value!r}") from None
    if "mode" in entry:
        if entry["mode"] not in ("real", "protected", "long"):
            raise ManifestError(f"{path}: {where}: 'mode' must be one of \"real\", \"protected\", \"long\", "
                                f"not {entry['mode']!r}")
        options["mode"] = entry["mode"]
    for key in ("cpus", "strict_io"):
        if key in entry:
            options[key] = entry[key]
    if "stdin" in entry:
        options["stdin"] = entry["stdin"].encode()
    serial = entry.get("expect_serial")
    if serial is not None:
        try:
            re.compile(serial)
        except re.error as err:
            raise ManifestError(f"{path}: {where}: 'expect_serial' is not a regular expression: {err}") from None
    return GuestSpec(name=entry["name"], image=str(image), options=options,
                     expect_status=entry.get("expect_status", 0), expect_serial=serial)
