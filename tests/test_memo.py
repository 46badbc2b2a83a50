"""kvmrun.memo.memoized keeps a function's results by argument, up to its limit."""
from kvmrun.memo import memoized


def test_each_argument_is_computed_once_until_the_limit_drops_them_all():
    calls = []

    @memoized(2)
    def square(n):
        """Squares."""
        calls.append(n)
        return n * n

    assert [square(3), square(3), square(4), square(3)] == [9, 9, 16, 9] and calls == [3, 4]
    assert square(5) == 25 and calls == [3, 4, 5]          # a third: the two kept are dropped
    assert square(3) == 9 and calls == [3, 4, 5, 3]
    assert square.__name__ == "square" and square.__doc__ == "Squares." and square.__wrapped__(2) == 4


def test_a_result_of_none_is_kept_too():
    calls = []

    @memoized(4)
    def nothing(n):
        calls.append(n)

    assert nothing(1) is None and nothing(1) is None and calls == [1]


def test_kvmruns_cached_results_are_the_same_objects():
    from kvmrun.kvm.abi import cpuid_buffer
    from kvmrun.paging import _table_bytes
    assert type(cpuid_buffer(3)) is type(cpuid_buffer(3)) and type(cpuid_buffer(4)) is not type(cpuid_buffer(3))
    assert _table_bytes(0, 8, 2) is _table_bytes(0, 8, 2)
    assert _table_bytes(0, 8, 2) == (0).to_bytes(8, "little") + (8).to_bytes(8, "little") + bytes(510 * 8)
