"""kvmrun.named_values.NamedValues gives what kvmrun uses of enum.Enum, alike: members by value and
by name, order, identity, repr and str, pickling and copying, and a data type's members (str)."""
import copy
import pickle
from enum import Enum

import pytest

from kvmrun.named_values import NamedValues


def make(base):
    class Colour(base):
        """Colours."""
        RED = "red"
        GREEN = "green"
        CRIMSON = "red"              # an alias

        def shout(self) -> str:
            return self.value.upper()

        @property
        def first(self) -> str:
            return self.value[0]
    return Colour


def make_str(base):
    class Mode(str, base):
        REAL = "real"
        LONG = "long"
    return Mode


def _pickleable(cls, name):
    cls.__qualname__ = name               # found by pickle at module level
    globals()[name] = cls
    return cls


COLOURS = {base: _pickleable(make(base), f"Colour{base.__name__}") for base in (NamedValues, Enum)}
MODES = {base: _pickleable(make_str(base), f"Mode{base.__name__}") for base in (NamedValues, Enum)}


@pytest.mark.parametrize("base", [NamedValues, Enum])
def test_named_values_behave_as_enum_members(base):
    cls = COLOURS[base]
    red = cls.RED
    assert cls("red") is red and cls(red) is red and cls["RED"] is red and cls.CRIMSON is red
    assert red.name == "RED" and red.value == "red" and red.shout() == "RED" and red.first == "r"
    assert [member.name for member in cls] == ["RED", "GREEN"] and len(cls) == 2
    assert list(cls.__members__) == ["RED", "GREEN", "CRIMSON"]
    assert isinstance(red, cls) and red in cls and red == cls.RED and red != cls.GREEN and red != "red"
    assert {red: 1}[cls.CRIMSON] == 1 and len({red, cls.GREEN, cls.CRIMSON}) == 2
    assert repr(red) == "<Colour.RED: 'red'>" and str(red) == "Colour.RED" and f"{red}" == "Colour.RED"
    assert pickle.loads(pickle.dumps(red)) is red and copy.copy(red) is red and copy.deepcopy([red])[0] is red
    assert cls.__doc__ == "Colours."
    with pytest.raises(ValueError):
        cls("blue")
    with pytest.raises(ValueError):
        cls(["unhashable"])
    with pytest.raises(KeyError):
        cls["BLUE"]


@pytest.mark.parametrize("base", [NamedValues, Enum])
def test_a_data_types_members_are_of_that_type(base):
    cls = MODES[base]
    assert isinstance(cls.LONG, str) and cls.LONG == "long" and cls("long") is cls.LONG
    assert cls.LONG.value == "long" and cls.LONG.upper() == "LONG" and [m.value for m in cls] == ["real", "long"]
    assert pickle.loads(pickle.dumps(cls.REAL)) is cls.REAL


def test_kvmruns_enums_are_named_values_at_run_time():
    from kvmrun.boot.cpu_modes import Mode
    from kvmrun.outcome import Reason
    from kvmrun.runtime.vcpu_thread import State
    for cls in (Reason, Mode, State):
        assert not issubclass(cls, Enum) and issubclass(cls, NamedValues)
    assert Reason("timeout") is Reason.TIMEOUT and Mode("real") == "real" and State.PAUSED.value == "paused"
