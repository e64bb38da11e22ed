"""Chat ids across regions: time-ordered, below 2^53, and never the same id from two regions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aurora_chats.ids import (
    EPOCH_MS,
    MAX_ID,
    MAX_REGION,
    chat_id_region,
    chat_id_time_ms,
    new_chat_id,
)
from aurora_chats.settings import get_settings, reset_settings
from hypothesis import given
from hypothesis import strategies as st

END_OF_IDS_MS = EPOCH_MS + 2**41 - 1  # the last millisecond whose ids stay below 2^53 (year 2093)


@given(
    ms=st.integers(min_value=EPOCH_MS, max_value=END_OF_IDS_MS),
    region=st.integers(min_value=0, max_value=MAX_REGION),
)
def test_an_id_carries_its_millisecond_and_region_and_stays_json_safe(ms: int, region: int) -> None:
    chat_id = new_chat_id(ms, region)
    assert 1 <= chat_id <= MAX_ID
    assert chat_id_time_ms(chat_id) == ms
    assert chat_id_region(chat_id) == region


@given(
    earlier=st.integers(min_value=EPOCH_MS, max_value=END_OF_IDS_MS - 1),
    gap=st.integers(min_value=1, max_value=10**6),
    regions=st.tuples(st.integers(0, MAX_REGION), st.integers(0, MAX_REGION)),
)
def test_ids_are_time_ordered_whatever_region_minted_them(
    earlier: int, gap: int, regions: tuple[int, int]
) -> None:
    later = min(earlier + gap, END_OF_IDS_MS)
    assert new_chat_id(earlier, regions[0]) < new_chat_id(later, regions[1])


def test_millions_of_ids_minted_at_once_in_every_region_never_collide_across_regions() -> None:
    """8 regions x 250 milliseconds x 512 draws each = 1,024,000 ids, all minted "at the same time"."""
    start = 1_800_000_000_000
    by_region: dict[int, set[int]] = {region: set() for region in range(MAX_REGION + 1)}
    for ms in range(start, start + 250):
        for region, ids in by_region.items():
            ids.update(new_chat_id(ms, region) for _ in range(512))
    everything = set().union(*by_region.values())
    assert len(everything) == sum(len(ids) for ids in by_region.values())  # no id from two regions
    assert all(chat_id_region(i) == r for r, ids in by_region.items() for i in ids)
    # Within one region and millisecond, 512 draws of 9 random bits collide (the conditional write retries those):
    # still, most are distinct, so a retry is rare at realistic rates.
    per_region_ms = len(by_region[0]) / 250
    assert 300 < per_region_ms <= 512


def test_the_region_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (-1, MAX_REGION + 1):
        with pytest.raises(ValueError, match="region"):
            new_chat_id(1_800_000_000_000, bad)
    monkeypatch.setenv("ID_REGION", "8")
    reset_settings()
    with pytest.raises(ValueError, match="ID_REGION"):
        get_settings()
    monkeypatch.setenv("ID_REGION", "5")
    reset_settings()
    assert get_settings().id_region == 5
    reset_settings()


def test_the_first_millisecond_of_region_zero_is_never_id_zero() -> None:
    assert all(new_chat_id(EPOCH_MS, 0) >= 1 for _ in range(5000))


def test_the_template_passes_its_id_region_to_every_function() -> None:
    from aurora_local.template import load_template

    template = load_template()
    parameter = template["Parameters"]["IdRegion"]
    assert (parameter["Default"], parameter["MinValue"], parameter["MaxValue"]) == (0, 0, MAX_REGION)
    assert template["Globals"]["Function"]["Environment"]["Variables"]["ID_REGION"] == {"Ref": "IdRegion"}


@given(
    st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.timezones())
)
def test_rfc3339_timestamps_are_the_strftime_ones(moment: datetime) -> None:
    """``to_rfc3339`` (``isoformat``) writes exactly what ``strftime`` + truncated milliseconds wrote before."""
    from aurora_chats.models import to_rfc3339

    utc = moment.astimezone(UTC)
    assert to_rfc3339(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def test_user_hash_is_remembered_and_unchanged() -> None:
    import hashlib

    from aurora_chats.observability import user_hash

    for user in ("alice", "bob", "alice", "üser"):
        assert user_hash(user) == hashlib.sha256(b"aurora-chats-log:" + user.encode()).hexdigest()[:16]
    assert user_hash.cache_info().hits >= 1
