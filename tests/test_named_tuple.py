"""kvmrun.named_tuple.NamedTuple behaves as typing.NamedTuple does for the class syntax kvmrun uses.
(tests/test_launch.py checks that booting imports neither typing nor the other heavy modules.)"""
import pickle
import typing

import pytest

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


@pytest.mark.parametrize("args, kwargs", [
    ((1,), {}), ((1, 5), {}), ((1, 5, "q"), {}), ((), {"x": 1}), ((1,), {"label": "q"}),
    ((), {"label": "q", "x": 4, "y": 0}),
])
def test_calls_that_fit_build_the_same_tuple(args, kwargs):
    ours, theirs = make(NamedTuple), make(typing.NamedTuple)
    assert tuple(ours(*args, **kwargs)) == tuple(theirs(*args, **kwargs))


@pytest.mark.parametrize("args, kwargs", [
    ((), {}), ((1, 2, "p", 4), {}), ((1,), {"x": 2}), ((1,), {"z": 3}), ((), {"y": 1}),
])
def test_calls_that_do_not_fit_are_refused_alike(args, kwargs):
    for cls in (make(NamedTuple), make(typing.NamedTuple)):
        with pytest.raises(TypeError):
            cls(*args, **kwargs)


def test_the_tuple_helpers_behave_alike():
    class Plain(NamedTuple):
        a: int
        b: str = "b"

    class Typed(typing.NamedTuple):
        a: int
        b: str = "b"
    for cls in (Plain, Typed):
        value = cls._make([1, "z"])
        assert value == (1, "z") and value.a == 1 and value[1] == "z"
        assert repr(value) == "%s(a=1, b='z')" % cls.__name__
        assert value._replace(b="y") == (1, "y") and cls.__match_args__ == ("a", "b")
        with pytest.raises(ValueError):
            value._replace(c=1)
        with pytest.raises(TypeError):
            cls._make([1])
        with pytest.raises(AttributeError):
            value.a = 2                                # immutable, and no __dict__ to add to
        with pytest.raises(AttributeError):
            value.other = 2


def test_methods_may_use_super():
    class Named(NamedTuple):
        name: str

        def __repr__(self):
            return "named " + super().__repr__()
    assert repr(Named("x")) == "named Named(name='x')"


def test_a_field_without_default_after_one_with_is_refused_as_by_typing():
    with pytest.raises(TypeError):
        class Bad(NamedTuple):
            a: int = 1
            b: int


def test_kvmruns_named_tuples_pickle():
    from kvmrun.outcome import Outcome
    from kvmrun.screen import Screen
    for value in (Outcome.halted(), Screen(1, 1, ((("a", 0x1F),),), cursor=(0, 0))):
        copy = pickle.loads(pickle.dumps(value))
        assert copy == value and type(copy) is type(value)
