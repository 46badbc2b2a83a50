"""kvmrun.int_constants.IntConstants gives what kvmrun uses of enum.IntEnum, alike."""
from enum import IntEnum

import pytest

from kvmrun.int_constants import IntConstants


def make(base):
    class Exit(base):
        """Exit reasons."""
        IO = 2
        HLT = 5
        HALT = 5                 # an alias
    return Exit


@pytest.mark.parametrize("base", [IntConstants, IntEnum])
def test_named_ints_look_the_same_as_intenums(base):
    cls = make(base)
    assert cls.IO == 2 and isinstance(cls.IO, int) and cls.IO + 1 == 3 and hash(cls.IO) == hash(2)
    assert cls(5) is cls.HLT and cls.HALT is cls.HLT and cls(5).name == "HLT"
    assert [c.name for c in cls] == ["IO", "HLT"] and len(cls) == 2
    assert set(cls.__members__) == {"IO", "HLT", "HALT"} and cls["HALT"] is cls.HLT
    with pytest.raises(KeyError):
        cls["NOPE"]
    assert str(cls.IO) == "2" and f"{cls.IO}" == "2" and f"{cls.IO:#x}" == "0x2" and "%d" % cls.IO == "2"
    assert repr(cls.IO) == "<Exit.IO: 2>"
    with pytest.raises(ValueError):
        cls(7)


def test_kvmruns_constants_are_intconstants_at_run_time():
    from kvmrun.kvm.abi import KvmExit
    from kvmrun.kvm.ioctl import Ioctl
    assert not issubclass(KvmExit, IntEnum) and KvmExit(2).name == "KVM_EXIT_IO"
    assert Ioctl.KVM_RUN.name == "KVM_RUN"
