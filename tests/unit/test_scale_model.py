"""The arithmetic of ``make scale`` (bench/scale.py): DynamoDB's rounding rules, item sizes from the data layer,
per-partition aggregation and the cleanup's call sequence. No timings."""

from __future__ import annotations

import random
from types import ModuleType

import pytest
from aurora_chats.dal import keys
from aurora_chats.dal.cleanup import MAX_BATCH_WRITE, PAGE_SIZE
from aurora_chats.dal.items import item_bytes, user_entry_item
from aurora_chats.models import Chat
from aurora_local.loader import load_module

from tests.support.env import ROOT


@pytest.fixture(scope="module")
def scale() -> ModuleType:
    return load_module(ROOT / "bench" / "scale.py", "bench_scale")


def test_read_units_round_up_to_4_kb_and_halve_when_eventually_consistent(scale: ModuleType) -> None:
    assert scale.read_units(0) == 1  # an empty read still costs a unit
    assert scale.read_units(4096) == 1
    assert scale.read_units(4097) == 2
    assert scale.read_units(4097, consistent=False) == 1
    assert scale.read_units(4097, transactional=True) == 4


def test_query_sums_the_items_then_rounds_once(scale: ModuleType) -> None:
    assert scale.query_units([1000] * 4) == 1  # 4,000 bytes: one unit, not four
    assert scale.query_units([1000] * 5) == 2
    assert scale.query_units([]) == 1


def test_write_units_round_up_to_1_kb_and_double_in_transactions(scale: ModuleType) -> None:
    assert scale.write_units(1) == 1
    assert scale.write_units(1024) == 1
    assert scale.write_units(1025) == 2
    assert scale.write_units(100, transactional=True) == 2
    assert scale.batch_delete_units([100, 1024, 1025]) == 4  # each delete billed on its own item


def test_a_known_item_from_the_data_layer(scale: ModuleType) -> None:
    chat = Chat(
        chat_id=258342912000001, user_id="alice", character_id=330905, created_at="2026-01-01T00:00:00.000Z"
    )
    size = item_bytes(user_entry_item(chat))
    assert 60 < size < 1024
    (charge,) = scale.list_charges("alice", 1000, size)
    assert charge == (keys.user_pk("alice"), 1.0, 0.0)  # 21 entries of ~100 B: one strongly consistent unit


def test_initialize_charges_each_partition_its_own_items(scale: ModuleType) -> None:
    sizes = scale.Sizes(chat=150, entry=120, first_message=400, idempotency=700, character=1800)
    charges = scale.initialize_charges(
        "alice", 7, 330905, sizes, idempotent=True, cached=False, counter=False
    )
    ledger = scale.Ledger()
    for pk, rcu, wcu in charges:
        ledger.add(0, pk, rcu, wcu)
        ledger.add(1, pk, rcu, wcu)
    peaks = ledger.peaks()
    assert peaks[keys.chat_pk(7)] == (0.0, 4.0)  # chat + first message, transactional
    assert peaks[keys.user_pk("alice")] == (0.0, 4.0)  # entry + idempotency record
    assert peaks[keys.character_pk(330905)] == (0.5, 0.0)  # eventually consistent GetItem
    assert ledger.totals() == (1.0, 16.0)  # two seconds of the same request


def test_purge_calls_follow_the_cleanup(scale: ModuleType) -> None:
    messages = PAGE_SIZE + 10
    calls = scale.purge_calls("alice", 7, [500] * messages, idempotent=True)
    names = [c.name for c in calls]
    assert names.count("Query") == 2
    assert names.count("DeleteItem") == 1
    batches = [c for c in calls if c.name == "BatchWriteItem" and c.pk == keys.chat_pk(7)]
    assert len(batches) == -(-messages // MAX_BATCH_WRITE)
    assert sum(c.wcu for c in batches) == messages
    # a full last page is followed by one empty page, as DynamoDB answers
    full = scale.purge_calls("alice", 7, [500] * PAGE_SIZE, idempotent=False)
    assert [c.name for c in full].count("Query") == 2
    # after a TTL removal: the same pages read (billed before the filter), no message deleted
    ttl = scale.purge_calls("alice", 7, [500] * messages, idempotent=True, ttl=True)
    assert [c for c in ttl if c.name == "Query"] == [c for c in calls if c.name == "Query"]
    assert not [c for c in ttl if c.name == "BatchWriteItem" and c.pk == keys.chat_pk(7)]


def test_busiest_second_is_a_sliding_window(scale: ModuleType) -> None:
    call = scale.Call("BatchWriteItem", "P", 0.0, 25.0, 0.1)
    assert scale.busiest_second([call] * 30, "P") == (0.0, 250.0)  # 10 calls of 100 ms fit in one second


def test_character_cache_model(scale: ModuleType) -> None:
    # one request per environment per second, 300 s cache: about one fetch in 301 requests
    assert scale.character_fetch_probability(100.0, 100.0) == pytest.approx(1 / 301, rel=0.05)
    assert scale.character_fetch_probability(0.0001, 100.0) == 1.0  # rare characters always miss


def test_pareto_top_is_decreasing_and_seeded(scale: ModuleType) -> None:
    top = scale.pareto_top(random.Random(1), 1_000_000, 10, 1.3, 1.0)
    assert top == sorted(top, reverse=True)
    assert top == scale.pareto_top(random.Random(1), 1_000_000, 10, 1.3, 1.0)


def test_template_knobs_are_read(scale: ModuleType) -> None:
    deployment = scale.deployment()
    assert deployment.cleanup_concurrency >= 1
    assert deployment.batch_size >= 1
