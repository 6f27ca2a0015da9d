"""The sync record (bsp.core.sync_record): its bytes round trip, the transport
contract's view of it, and the rules that turn all ranks' records into one
verdict."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from bsp.arrays import superstep_kinds
from bsp.core.sync_record import RECORD_SIZE, Flags, Kind, Status, Verdict, define_kind, judge, pack_record, unpack_all
from bsp.core.transport import superstep_of

INT32 = st.integers(-2**31, 2**31 - 1)


@given(superstep=st.integers(0, 2**62), kind=INT32, arg=INT32, objects=INT32, signature=st.integers(0, 2**32 - 1),
       status=st.sampled_from([Status.RUNNING, Status.FAILED, Status.RETURNED]), flags=INT32, group=INT32,
       leader=INT32)
def test_a_record_round_trips_and_its_superstep_is_readable_by_a_transport(
        superstep: int, kind: int, arg: int, objects: int, signature: int, status: int, flags: int,
        group: int, leader: int) -> None:
    blob = pack_record(superstep, kind, arg, objects, signature, status, flags, group, leader)
    assert len(blob) == RECORD_SIZE
    assert tuple(unpack_all(blob, 1)[0]) == (superstep, kind, arg, objects, signature, status, flags, group, leader)
    assert superstep_of(blob) == superstep


def records(*fields: tuple[int, ...]) -> bytes:
    return b"".join(pack_record(*field) for field in fields)


def test_the_same_call_everywhere_proceeds_and_the_flags_are_or_ed() -> None:
    verdict, parsed, flags = judge(records((3, Kind.SYNC, 0, 1, 7, Status.RUNNING, Flags.GETS),
                                           (3, Kind.SYNC, 0, 1, 7, Status.RUNNING, 0)), 2)
    assert verdict is Verdict.PROCEED and flags == Flags.GETS and [r.superstep for r in parsed] == [3, 3]


def test_every_rank_returned_proceeds() -> None:
    verdict, _, _ = judge(records(*[(5, Kind.EXIT, 0, 0, 0, Status.RETURNED, 0)] * 3), 3)
    assert verdict is Verdict.PROCEED


def test_different_calls_different_roots_or_different_objects_are_a_mismatch() -> None:
    base = (2, Kind.BROADCAST, 0, 1, 7, Status.RUNNING, 0)
    for other in [(2, Kind.SYNC, 0, 1, 7, Status.RUNNING, 0),           # another call
                  (2, Kind.BROADCAST, 1, 1, 7, Status.RUNNING, 0),      # another root
                  (2, Kind.BROADCAST, 0, 2, 7, Status.RUNNING, 0),      # another number of data objects
                  (2, Kind.BROADCAST, 0, 1, 8, Status.RUNNING, 0),      # other data objects
                  (3, Kind.BROADCAST, 0, 1, 7, Status.RUNNING, 0),      # another superstep
                  (2, Kind.EXIT, 0, 1, 7, Status.RETURNED, 0)]:         # returned
        assert judge(records(base, other), 2)[0] is Verdict.MISMATCH, other


def test_transpose_and_redistribute_are_different_calls() -> None:
    verdict, _, _ = judge(records((1, superstep_kinds.TRANSPOSE, 0, 1, 7, Status.RUNNING, 0),
                                  (1, superstep_kinds.REDISTRIBUTE, 0, 1, 7, Status.RUNNING, 0)), 2)
    assert verdict is Verdict.MISMATCH


def test_a_failure_wins_over_a_mismatch() -> None:
    verdict, _, _ = judge(records((1, Kind.SYNC, 0, 0, 0, Status.RUNNING, 0),
                                  (4, Kind.EXIT, 0, 0, 0, Status.FAILED, 0)), 2)
    assert verdict is Verdict.FAILED


def test_group_collectives_agree_on_roots_within_a_group_only() -> None:
    def group_reduce(root: int, leader: int) -> tuple[int, ...]:
        return (1, Kind.GROUP_REDUCE, root, 1, 7, Status.RUNNING, 0, 64, leader)

    two_groups = records(group_reduce(0, 0), group_reduce(0, 0), group_reduce(1, 2), group_reduce(1, 2))
    assert judge(two_groups, 4)[0] is Verdict.PROCEED
    one_group = records(group_reduce(0, 0), group_reduce(1, 0))
    assert judge(one_group, 2)[0] is Verdict.MISMATCH


def test_describe_names_the_call_and_its_root() -> None:
    blob = records((1, Kind.BROADCAST, 2, 0, 0, Status.RUNNING, 0), (1, Kind.SYNC, 0, 0, 0, Status.RUNNING, 0),
                   (1, Kind.EXIT, 0, 0, 0, Status.RETURNED, 0))
    assert [record.describe() for record in unpack_all(blob, 3)] == [
        "broadcast(root=2)", "sync", "returned from the program"]


def test_a_data_object_s_kind_is_named_once() -> None:
    assert define_kind(superstep_kinds.TRANSPOSE, "transpose") == superstep_kinds.TRANSPOSE      # the same name again: fine
    with pytest.raises(ValueError, match="kind 22 is already 'transpose'"):
        define_kind(superstep_kinds.TRANSPOSE, "flip")
    with pytest.raises(ValueError, match="already 'sync'"):
        define_kind(Kind.SYNC, "mine")
    blob = records((1, superstep_kinds.HALO, 0, 0, 0, Status.RUNNING, 0))
    assert unpack_all(blob, 1)[0].describe() == "halo"
