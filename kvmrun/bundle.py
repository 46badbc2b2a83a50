"""kvmrun's compiled modules in one file, read in one go when the command line starts.

Importing a module costs ~0.2 ms here before any of its code runs (finding it on the path, statting,
opening and reading its .pyc); `kvmrun boot` imports ~70 of kvmrun's own, ~14 ms of every boot. As
CPython 3.11 freezes its own start-up modules for the same reason, the launcher serves these
modules from one bundle: their code objects, each with the size and modification time of the source
it was compiled from. A module whose source differs (an edit, a reinstall) or is not in the bundle is
imported as usual, and the bundle is written anew when the command ends — like a .pyc, beside the
.pycs, not where bytecode may not be written (PYTHONDONTWRITEBYTECODE, a read-only install).

Only `kvmrun boot` installs it, the command whose start-up is its cost (a boot takes milliseconds);
`import kvmrun` (the API, pytest) and the other commands import as usual."""
import marshal
import os
import sys

_HEADER = b"kvmrun bundle 2\n" + sys.modules["_frozen_importlib_external"].MAGIC_NUMBER
_PACKAGE = __name__.rpartition(".")[0]
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_ModuleSpec = type(__spec__)      # importlib.machinery.ModuleSpec, without importing importlib

# name -> (source path, is a package, source st_mtime_ns, source st_size, marshalled code). The code
# is a view into the file as read, unmarshalled when its module is imported: the bundle holds every
# module any boot needed (a BIOS, a debugger's), one boot needs about two thirds of them.
Entries = dict
_INDEX_LENGTH = 8                 # bytes, after the header: the index's length, then the index, then code


def bundle_path() -> str:
    return os.path.join(_PACKAGE_DIR, "__pycache__", f"bundle.{sys.implementation.cache_tag}.bin")


class ModuleBundle:
    """A meta path finder and loader for the modules in one bundle."""

    def __init__(self, entries: Entries, imported=frozenset()):
        self.entries = entries
        self.stale = False            # a module's source no longer matches: write the bundle anew
        self.imported = imported      # ours imported before this was installed: never served by it

    def find_spec(self, name, path=None, target=None):
        entry = self.entries.get(name)
        if entry is None:
            return None
        source, is_package, mtime_ns, size, marshalled = entry
        try:
            status = os.stat(source)
            current = (status.st_mtime_ns, status.st_size) == (mtime_ns, size)
            code = marshal.loads(marshalled) if current else None
        except (OSError, EOFError, ValueError, TypeError):
            code = None
        if code is None:
            self.stale = True
            return None
        spec = _ModuleSpec(name, self, origin=source, is_package=is_package,  # type: ignore[arg-type]
                           loader_state=code)
        if is_package:
            spec.submodule_search_locations = [os.path.dirname(source)]
        spec.has_location = True      # __file__ is the source, so tracebacks and inspect show it
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        exec(module.__spec__.loader_state, module.__dict__)


_installed = None


def install() -> None:
    """Serve kvmrun's modules from the bundle, where there is a readable one for this Python."""
    global _installed
    if _installed is not None or sys.implementation.cache_tag is None:
        return
    entries = read_bundle(bundle_path())
    _installed = ModuleBundle(entries, frozenset(_ours_imported()))
    sys.meta_path.insert(0, _installed)


def read_bundle(path: str) -> Entries:
    """The bundle's entries; none for a missing, unreadable or foreign file. (A module whose code
    turns out damaged is imported as usual: find_spec.)"""
    try:
        with open(path, "rb") as file:
            data = memoryview(file.read())
        start = len(_HEADER) + _INDEX_LENGTH
        if data[:len(_HEADER)] != _HEADER:
            return {}
        code_start = start + int.from_bytes(data[len(_HEADER):start], "little")
        index = marshal.loads(data[start:code_start])
        return {name: (source, is_package, mtime_ns, size, data[code_start + offset:code_start + offset + length])
                for name, (source, is_package, mtime_ns, size, offset, length) in index.items()}
    except (OSError, EOFError, ValueError, TypeError, AttributeError):
        return {}


def save_if_stale() -> None:
    """Write the bundle anew when a module's source changed or this command imported a module the
    bundle lacks. Quietly nothing where bytecode is not to be written or cannot be."""
    if _installed is None or sys.dont_write_bytecode:
        return
    wanted = {name: source for name, source in _ours_imported().items() if name not in _installed.imported}
    if not _installed.stale and wanted.keys() <= _installed.entries.keys():
        return
    kept = {name: entry[0] for name, entry in _installed.entries.items() if name not in _installed.imported}
    try:
        write_bundle(bundle_path(), {**kept, **wanted})
    except Exception:             # a bundle is only ever a saving: never the command's failure
        pass


def _ours_imported():
    """name -> source file of kvmrun's modules imported so far. (Not the standard library's: served
    from the bundle too, they started no faster here; finding them is cheap, running them is not.)"""
    return {name: module.__file__ for name, module in list(sys.modules.items())
            if (name == _PACKAGE or name.startswith(_PACKAGE + ".")) and
            str(getattr(module, "__file__", "")).endswith(".py")}


def write_bundle(path: str, sources) -> None:
    """Compile (or take from their .pycs) the modules named, from their source files (name -> path),
    and write them as one bundle, atomically: concurrent commands each write a whole file."""
    SourceFileLoader = sys.modules["_frozen_importlib_external"].SourceFileLoader
    index = {}
    codes = []
    offset = 0
    for name, source in sorted(sources.items()):
        if not os.path.isfile(source):
            continue
        status = os.stat(source)             # before reading: an edit during this shows as stale
        code = marshal.dumps(SourceFileLoader(name, source).get_code(name))
        index[name] = (source, os.path.basename(source) == "__init__.py", status.st_mtime_ns, status.st_size,
                       offset, len(code))
        codes.append(code)
        offset += len(code)
    marshalled_index = marshal.dumps(index)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}"
    try:
        with open(partial, "wb") as file:
            file.write(_HEADER + len(marshalled_index).to_bytes(_INDEX_LENGTH, "little") + marshalled_index)
            file.write(b"".join(codes))
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
