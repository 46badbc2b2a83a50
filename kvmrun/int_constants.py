"""Named int constants without enum.IntEnum, whose classes cost ~3 ms of every start here to create
(kvm/abi.py's exit reasons, capabilities, MP states; kvm/ioctl.py's request numbers).

`class KvmExit(IntConstants): KVM_EXIT_IO = 2` gives what kvmrun uses of an IntEnum: each constant an
int that knows its `.name`, `KvmExit(2)` the constant (ValueError for a value it does not name),
`KvmExit["KVM_EXIT_IO"]` by name, iteration and len() in definition order, `__members__` with
aliases. Modules import it at run time and enum.IntEnum under TYPE_CHECKING, so mypy checks them
against the real thing (tests/test_int_constants.py keeps the two alike)."""
from .named_values import MemberLookup


class Constant(int):
    """One constant: its value, and its name for reports."""
    name: str
    owner: str

    def __repr__(self) -> str:
        return f"<{self.owner}.{self.name}: {int(self)}>"

    __str__ = int.__repr__                  # as IntEnum's: str() and f-strings give the number
    __format__ = int.__format__


class _IntConstantsMeta(MemberLookup):
    def __new__(mcls, name, bases, namespace):
        cls = super().__new__(mcls, name, bases, namespace)
        by_value: dict = {}
        members: dict = {}
        order = []
        for key, value in namespace.items():
            if key.startswith("_") or type(value) is not int:
                continue
            constant = Constant(value)
            constant.name, constant.owner = key, name
            constant = by_value.setdefault(value, constant)   # an alias is the first constant, as in IntEnum
            setattr(cls, key, constant)
            members[key] = constant
            order.append(constant)
        cls._by_value, cls.__members__ = by_value, members
        cls._order = tuple(dict.fromkeys(order))                 # each constant once, aliases left out
        return cls


class IntConstants(metaclass=_IntConstantsMeta):
    pass
