"""kvmrun.named_tuple.NamedTuple behaves as typing.NamedTuple does for the class syntax kvmrun uses,
and kvmrun's boot path imports neither typing nor re (their imports are ~13 ms of every start here)."""
import pickle
import subprocess
import sys
import typing

import pytest

from conftest import guest
from kvmrun.named_tuple import NamedTuple


def make(base):
    class Point(base):
        """A point."""
        x: int
        y: int = 2
        label: str = "p"

        @property
        def total(self) -> int:
            return self.x + self.y

        def moved(self, by: int) -> "Point":
            return self._replace(x=self.x + by)

        @classmethod
        def origin(cls):
            return cls(0, 0)

        def __repr__(self):
            return f"<{self.x},{self.y}>"
    return Point


def test_the_class_syntax_gives_what_typings_gives():
    ours, theirs = make(NamedTuple), make(typing.NamedTuple)
    for cls in (ours, theirs):
        point = cls(1)
        assert tuple(point) == (1, 2, "p") and point.total == 3 and point.moved(2).x == 3
        assert cls.origin() == (0, 0, "p") and repr(point) == "<1,2>" and cls.__doc__ == "A point."
        assert cls._fields == ("x", "y", "label") and cls._field_defaults == {"y": 2, "label": "p"}
        assert isinstance(point, tuple) and point._asdict() == {"x": 1, "y": 2, "label": "p"}
        with pytest.raises(TypeError):
            cls()
    assert ours.__name__ == theirs.__name__ == "Point"


def test_a_field_without_default_after_one_with_is_refused_as_by_typing():
    with pytest.raises(TypeError):
        class Bad(NamedTuple):
            a: int = 1
            b: int


def test_kvmruns_named_tuples_pickle():
    from kvmrun.outcome import Outcome
    assert pickle.loads(pickle.dumps(Outcome.halted())) == Outcome.halted()


@pytest.mark.kvm
@pytest.mark.parametrize("args", [["hello64.elf"], ["hello16.bin"], ["--mode", "real", "hello16.bin"],
                                  ["barebones.elf", "--module", "module.txt"], ["barebones2.elf"], ["pvh.elf"],
                                  ["hello.img"]])
def test_booting_imports_neither_typing_nor_re(args):
    code = ("import os, sys\n"
            "sys.argv = ['kvmrun', 'boot'] + sys.argv[1:]     # the screen as text after the run\n"
            "exit_now = os._exit\n"
            "def report(status):\n"
            "    print(sorted({'typing', 're'} & set(sys.modules)), status, file=sys.stderr)\n"
            "    exit_now(status)\n"
            "os._exit = report\n"
            "from kvmrun.launch import main\n"
            "main()\n")
    argv = [guest(arg) if "." in arg else arg for arg in args]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, timeout=60)
    assert done.stderr.decode().splitlines()[-1] == "[] 0", done.stderr.decode()
