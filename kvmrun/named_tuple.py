"""`class X(NamedTuple)` without importing typing, whose import alone costs ~11 ms of every start here.

The same class syntax as typing.NamedTuple — annotated fields in order, defaults, methods,
properties, class methods, a docstring — and the same behaviour as the classes collections.namedtuple
makes (which typing's are): field accessors, `_fields`, `_field_defaults`, `_make`, `_replace`,
`_asdict`, the repr, pickling. Built without collections.namedtuple, which compiles a `__new__` for
each class (~0.15 ms a class, ~30 classes on the boot path) and imports collections; the methods
here are shared by every class through one base. Modules on kvmrun's boot path import this at run
time and typing's under TYPE_CHECKING, so mypy checks them against the real thing
(tests/test_named_tuple.py keeps the two alike)."""
from _collections import _tuplegetter    # type: ignore[import-not-found]  # collections.namedtuple's accessor

# What a class body holds that is not the tuple's to keep.
_NOT_COPIED = frozenset({"__module__", "__qualname__", "__annotations__", "__orig_bases__", "_is_root"})


class _Tuple(tuple):
    """The methods every named tuple shares; each class adds its fields' accessors."""
    __slots__ = ()
    _fields: tuple = ()
    _field_defaults: dict = {}

    def __new__(cls, *args, **kwargs):
        if kwargs or len(args) != len(cls._fields):
            args = _arrange(cls, args, kwargs)
        return tuple.__new__(cls, args)

    @classmethod
    def _make(cls, iterable):
        result = tuple.__new__(cls, iterable)
        if len(result) != len(cls._fields):
            raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(result)}")
        return result

    def _replace(self, /, **changes):
        result = self._make(map(changes.pop, self._fields, self))
        if changes:
            raise ValueError(f"Got unexpected field names: {list(changes)!r}")
        return result

    def _asdict(self):
        return dict(zip(self._fields, self))

    def __repr__(self):
        return self.__class__.__name__ + "(" + ", ".join(
            f"{name}={value!r}" for name, value in zip(self._fields, self)) + ")"

    def __getnewargs__(self):
        return tuple(self)


def _arrange(cls, args, kwargs) -> tuple:
    """The values in field order from positional and keyword arguments and the defaults, refused as
    Python refuses a call that does not fit the fields."""
    fields = cls._fields
    if len(args) > len(fields):
        raise TypeError(f"{cls.__name__}() takes {len(fields)} positional arguments but {len(args)} were given")
    for name in kwargs:
        if name not in fields:
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}")
        if fields.index(name) < len(args):
            raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
    values = list(args)
    for name in fields[len(args):]:
        if name in kwargs:
            values.append(kwargs[name])
        elif name in cls._field_defaults:
            values.append(cls._field_defaults[name])
        else:
            raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
    return tuple(values)


class _NamedTupleMeta(type):
    def __new__(mcls, name, bases, namespace):
        if namespace.get("_is_root"):
            return super().__new__(mcls, name, bases, namespace)
        fields = tuple(namespace.get("__annotations__", {}))
        defaults = {}
        for field in fields:
            if field in namespace:
                defaults[field] = namespace[field]
            elif defaults:
                raise TypeError(f"{name}: field {field!r} without a default follows one with a default")
        body = {key: value for key, value in namespace.items() if key not in _NOT_COPIED and key not in fields}
        body.update({field: _tuplegetter(index, f"Alias for field number {index}")
                     for index, field in enumerate(fields)})
        body.update(__slots__=(), _fields=fields, _field_defaults=defaults, __match_args__=fields,
                    __module__=namespace.get("__module__"), __qualname__=namespace.get("__qualname__", name))
        body.setdefault("__doc__", f"{name}({', '.join(fields)})")
        return type(name, (_Tuple,), body)


class NamedTuple(metaclass=_NamedTupleMeta):
    _is_root = True
