"""How `kvmrun test` hands guests to its workers (suite/runner.plan_batches): every guest once, in
manifest order, small batches, and a `group`'s guests all in one batch, so one worker runs them in
order, as pytest-xdist's --dist loadgroup does."""
from hypothesis import given
from hypothesis import strategies as st

from kvmrun.suite.manifest import GuestSpec
from kvmrun.suite.runner import plan_batches


def specs(groups):
    return [GuestSpec(name=f"g{index}", image="/x", group=group) for index, group in enumerate(groups)]


def test_ungrouped_guests_go_in_small_batches_in_order():
    assert plan_batches(specs([None] * 16), 2) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11], [12, 13],
                                                   [14, 15]]
    assert plan_batches(specs([None] * 3), 2) == [[0], [1], [2]]


def test_a_groups_guests_make_one_batch_where_its_first_guest_is():
    groups = [None, "disk", None, None, "net", "disk", None, "disk", "net", None]
    assert plan_batches(specs(groups), 1) == [[0], [1, 5, 7], [2], [3], [4, 8], [6], [9]]


@given(st.lists(st.sampled_from([None, None, None, "a", "b", "c"]), max_size=60), st.integers(1, 8))
def test_every_guest_is_in_exactly_one_batch_and_each_group_in_one(groups, workers):
    batches = plan_batches(specs(groups), workers)
    flat = [index for batch in batches for index in batch]
    assert sorted(flat) == list(range(len(groups)))
    assert all(batch == sorted(batch) and batch for batch in batches)
    for group in set(groups) - {None}:
        holding = [batch for batch in batches if any(groups[index] == group for index in batch)]
        assert len(holding) == 1 and all(groups[index] == group for index in holding[0])
