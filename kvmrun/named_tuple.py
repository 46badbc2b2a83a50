"""`class X(NamedTuple)` without importing typing, whose import alone costs ~11 ms of every start here.

The same class syntax as typing.NamedTuple — annotated fields in order, defaults, methods,
properties, class methods, a docstring — built on collections.namedtuple, as typing's own is. Modules
on kvmrun's boot path import this at run time and typing's under TYPE_CHECKING, so mypy checks them
against the real thing (tests/test_named_tuple.py keeps the two alike)."""
import collections

# What a class body holds that is not the tuple's to keep.
_NOT_COPIED = frozenset({"__module__", "__qualname__", "__annotations__", "__orig_bases__", "_is_root"})


class _NamedTupleMeta(type):
    def __new__(mcls, name, bases, namespace):
        if namespace.get("_is_root"):
            return super().__new__(mcls, name, bases, namespace)
        fields = list(namespace.get("__annotations__", {}))
        defaults = []
        for field in fields:
            if field in namespace:
                defaults.append(namespace[field])
            elif defaults:
                raise TypeError(f"{name}: field {field!r} without a default follows one with a default")
        cls = collections.namedtuple(name, fields, defaults=defaults,  # type: ignore[misc]
                                     module=namespace.get("__module__"))
        for key, value in namespace.items():
            if key not in _NOT_COPIED and key not in fields:
                setattr(cls, key, value)
        cls.__qualname__ = namespace.get("__qualname__", name)
        return cls


class NamedTuple(metaclass=_NamedTupleMeta):
    _is_root = True
