"""`class Reason(NamedValues)` for what kvmrun uses of enum.Enum, without importing enum: enum's import
pulls in functools and collections, and with its classes (and the signal module's, built on it)
costs ~3 ms of every `kvmrun boot` here.

Each member is an instance of its class with `.name` and `.value`; `Reason("halted")` finds a member
by value (ValueError for a value none has), `Reason["HALTED"]` by name; iterating and len() go in
definition order; members compare and hash by identity, copy and pickle as themselves; repr and
str are Enum's. A class with a data type first (`class Mode(str, NamedValues)`) makes members of that
type, equal to their values, as `class Mode(str, Enum)` does. Modules import it at run time and
enum.Enum under TYPE_CHECKING, so mypy checks them against the real thing
(tests/test_named_values.py keeps the two alike)."""


class MemberLookup(type):
    """What an Enum class gives of its members: by value (`cls(value)`, ValueError for a value none
    has), by name (`cls[name]`), and iteration and len() in definition order, aliases left out. Its
    classes fill in _by_value, __members__ and _order (int_constants.py's too)."""
    _by_value: dict
    _order: tuple
    __members__: dict

    def __call__(cls, value):
        try:
            return cls._by_value[value]
        except (KeyError, TypeError):
            raise ValueError(f"{value!r} is not a valid {cls.__qualname__}") from None

    def __getitem__(cls, name: str):
        return cls.__members__[name]

    def __iter__(cls):
        return iter(cls._order)

    def __len__(cls) -> int:
        return len(cls._order)


class _NamedValuesMeta(MemberLookup):
    def __new__(mcls, name, bases, namespace):
        cls = super().__new__(mcls, name, bases, namespace)
        if namespace.get("_is_root"):
            return cls
        data_type = next((base for base in cls.__mro__[1:] if base is not NamedValues and base is not object
                          and not isinstance(base, _NamedValuesMeta)), None)
        members: dict = {}
        by_value: dict = {}
        for key, value in namespace.items():
            if key.startswith("_") or callable(value) or isinstance(value, (classmethod, staticmethod, property)):
                continue
            member = data_type.__new__(cls, value) if data_type is not None else object.__new__(cls)  # type: ignore
            member._name_, member._value_ = key, value
            member = by_value.setdefault(value, member)          # an alias is the first member, as in Enum
            setattr(cls, key, member)
            members[key] = member
        cls._by_value, cls.__members__ = by_value, members
        cls._order = tuple(dict.fromkeys(members.values()))      # each member once, aliases left out
        return cls

    def __call__(cls, value):
        return value if isinstance(value, cls) else super().__call__(value)

    def __contains__(cls, member) -> bool:
        return isinstance(member, cls) and member in cls._order


class NamedValues(metaclass=_NamedValuesMeta):
    _is_root = True
    _name_: str
    _value_: object

    @property
    def name(self) -> str:
        return self._name_

    @property
    def value(self):
        return self._value_

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self._name_}: {self._value_!r}>"

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self._name_}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __reduce_ex__(self, protocol):
        return type(self), (self._value_,)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __hash__(self) -> int:
        return hash(self._name_)
