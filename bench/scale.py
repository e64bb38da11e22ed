"""``make scale``: a capacity model of the single table at 10,000 requests/s, run in seconds and seeded.

Every key and item size comes from the data layer itself (``aurora_chats.dal.keys`` / ``items`` builders and
``item_bytes``) and the deployment's knobs from ``template.yaml``, so the model follows the code. What it computes,
with DynamoDB's rounding rules (:func:`read_units`, :func:`write_units`):

1. **The API mix** (:data:`MIX`) for a 10 s window at :data:`REQUESTS_PER_SECOND`: per partition key and second,
   RCU and WCU; the hottest partitions against the 3,000 RCU / 1,000 WCU per-partition ceilings (goal: <= 10 %).
   Users have heavy-tailed (Pareto) activity and chat counts; the heaviest are drawn as order statistics of the
   whole daily population, the rest are fresh users (at ~25 requests a day, two requests of one ordinary user in
   the same second are negligible).
2. **The character item**, read by every initialize whose execution environment has not cached it (300 s): a
   renewal model per warm environment, plus the cold environments of a scale-out at Lambda's scaling rate.
3. **Fan-out**: one purge of a long chat (its partition's WCU/s), a ``UserDeleted`` of a 10,000-chat account, and
   a retention change expiring millions of chats, at the cleanup's reserved concurrency (``CleanupConcurrency``).
4. **Pathological users** and what stops them; 5. the **monthly cost** per million active users.

Latencies and workload shares are assumptions, named below; prices are on-demand us-east-1 with their date.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aurora_chats.dal import keys
from aurora_chats.dal.cleanup import MAX_BATCH_WRITE, PAGE_SIZE
from aurora_chats.dal.items import (
    character_item,
    chat_item,
    idempotency_item,
    item_bytes,
    message_item,
    user_entry_item,
)
from aurora_chats.greeting import render_greeting
from aurora_chats.ids import EPOCH_MS, LOW_BITS, RANDOM_BITS
from aurora_chats.models import Character, CharacterCard, Chat, IdempotencyRecord, Message
from aurora_local.template import load_template

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- DynamoDB's rules and limits
READ_UNIT_BYTES = 4096  # 1 RCU = one strongly consistent read of up to 4 KB (eventually consistent: half)
WRITE_UNIT_BYTES = 1024  # 1 WCU = one write of up to 1 KB
STORAGE_OVERHEAD_BYTES = 100  # per item, billed as storage
PARTITION_RCU = 3000.0
PARTITION_WCU = 1000.0
GOAL_SHARE = 0.10  # no partition over 10 % of a ceiling in the realistic mix
TABLE_QUOTA_UNITS = 40_000  # default per-table on-demand maximum (account quota, RCU and WCU each)
NEW_TABLE_WARM_WCU, NEW_TABLE_WARM_RCU = 4_000, 12_000  # a new on-demand table's initial throughput

# ---------------------------------------------------------------- prices (on-demand, us-east-1)
PRICES_TAKEN = "2026-12-01"  # from the pages cited beside each price (DynamoDB: since the 2024-11-01 cut)
DDB_USD_PER_MILLION_WRU = (
    0.625  # airbyte.com/data-engineering-resources/dynamodb-pricing ("after the 50% reduction")
)
DDB_USD_PER_MILLION_RRU = 0.125  # same source
DDB_USD_PER_GB_MONTH = 0.25  # Standard table class, beyond the free 25 GB (not re-verified here)
LAMBDA_ARM64_USD_PER_GB_S = 0.0000133334  # aws.amazon.com/lambda/pricing (arm64, first 6 B GB-s a month)
LAMBDA_USD_PER_MILLION_REQUESTS = 0.20
HTTP_API_USD_PER_MILLION = (
    1.00  # apigatewaycost.com/aws, awsforengineers.com: HTTP API, first 300 M requests a month (then $0.90)
)
SECONDS_PER_MONTH = 30 * 86_400

# ---------------------------------------------------------------- workload (assumptions)
REQUESTS_PER_SECOND = 10_000
MIX = {"list": 0.80, "initialize": 0.15, "delete": 0.05}
IDEMPOTENCY_KEY_SHARE = 1.0  # the SDK sends an Idempotency-Key with every initialize (its retries)
REPLAY_SHARE = 0.005  # initializes that are idempotent replays
LIST_LIMIT = 20  # the SDK's page; the data layer reads limit + 1
REQUESTS_PER_USER_DAY = 25.0  # mean over daily active users
ACTIVITY_PARETO_ALPHA = 1.3  # heavy tail of per-user activity
HUMAN_MAX_RPS = 1.0  # sustained ceiling of a person in a chat UI (scripts: see pathological users)
CHATS_PARETO_ALPHA = 1.2  # heavy tail of chats per user
CHATS_MIN = 3
MAX_CHATS_PER_USER = 1000  # template parameter MaxChatsPerUser's default, read from the template when present
COUNTER_WCU = 2.0  # the per-user chat counter: one more transactional update of <= 1 KB on USER#
CHARACTERS = 20_000
CHARACTER_ZIPF_S = 1.0
MESSAGES_MEDIAN, MESSAGES_SIGMA, MESSAGES_CAP = 12.0, 1.6, 100_000  # messages per chat, lognormal
USER_TURN_MEDIAN_BYTES, REPLY_MEDIAN_BYTES, CONTENT_SIGMA, CONTENT_CAP = 80, 700, 0.6, 8_000
WINDOW_SECONDS = 10
HEAVY_USERS = 200  # drawn explicitly as the top order statistics of the daily population

# Lambda (assumptions: arm64, the template's MemorySize; DynamoDB answers in single-digit ms)
DURATION_MS = {"list": 12.0, "initialize": 25.0, "delete": 18.0}
COLD_START_SHARE = 0.002  # invocations that are cold starts
COLD_INIT_MS = 900.0  # billed init of a cold start at 512 MB (~0.3 vCPU)
WARM_POOL_FACTOR = (
    2.0  # warm environments = Little's-law concurrency x this (idle ones stay warm for minutes)
)
ENVIRONMENT_LIFETIME_S = 2 * 3600.0  # Lambda recycles environments after hours
LAMBDA_SCALE_OUT_PER_S = 100  # 1,000 new environments per 10 s per function
CHARACTER_CACHE_SECONDS = 300.0  # CHARACTER_CACHE_SECONDS default (aurora_chats.settings)

# Cleanup call latencies (assumptions: the template's comment says 20-50 ms per BatchWriteItem)
BATCH_WRITE_S = 0.030
QUERY_PAGE_S = 0.040
DELETE_ITEM_S = 0.008
RECORD_OVERHEAD_S = 0.005  # per stream record: parse, metrics, log line

LONG_CHATS = (1_000, 10_000, 100_000)
DELETED_ACCOUNT_CHATS = 10_000
RETENTION_EXPIRED_CHATS = 3_000_000
TTL_SPREAD_HOURS = 24.0  # TTL deletes lazily: assume the expired chats' records arrive over a day


# ---------------------------------------------------------------- capacity units


def read_units(size: int, *, consistent: bool = True, transactional: bool = False) -> float:
    """RCU of one read of ``size`` bytes (a Query: the sum of the items it read, before any filter)."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    factor = 2.0 if transactional else 1.0 if consistent else 0.5
    return units * factor


def query_units(sizes: Iterable[int], *, consistent: bool = True) -> float:
    """A Query sums its items' full sizes (a projection does not reduce them), then rounds up once."""
    return read_units(sum(sizes), consistent=consistent)


def write_units(size: int, *, transactional: bool = False) -> float:
    """WCU of one write or delete of an item of ``size`` bytes (the larger of old and new; absent: 1 unit)."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES)) * (2.0 if transactional else 1.0)


def batch_delete_units(sizes: Iterable[int]) -> float:
    """BatchWriteItem: each delete is billed on its own item's size (1 WCU per item up to 1 KB)."""
    return sum(write_units(size) for size in sizes)


# ---------------------------------------------------------------- the ledger: units per partition key and second


@dataclass
class Ledger:
    """RCU/WCU per (second, partition key); :meth:`peaks` is each key's busiest second."""

    units: dict[tuple[int, str], list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))

    def add(self, second: int, pk: str, rcu: float = 0.0, wcu: float = 0.0) -> None:
        cell = self.units[(second, pk)]
        cell[0] += rcu
        cell[1] += wcu

    def peaks(self) -> dict[str, tuple[float, float]]:
        peak: dict[str, tuple[float, float]] = {}
        for (_, pk), (rcu, wcu) in self.units.items():
            old = peak.get(pk, (0.0, 0.0))
            peak[pk] = (max(old[0], rcu), max(old[1], wcu))
        return peak

    def totals(self) -> tuple[float, float]:
        return sum(c[0] for c in self.units.values()), sum(c[1] for c in self.units.values())


def share_of_ceiling(rcu: float, wcu: float) -> float:
    return max(rcu / PARTITION_RCU, wcu / PARTITION_WCU)


# ---------------------------------------------------------------- items, from the data layer's builders

_CREATED_AT = "2026-01-01T00:00:00.000Z"
_NOW_MS = EPOCH_MS + 2 * 365 * 86_400_000


_minted = itertools.count()


def chat_id_for(rng: random.Random, region: int = 0) -> int:
    """A chat id as ids.new_chat_id mints it (same layout and digits), unique within the run."""
    n = next(_minted)
    ms, low = divmod(n, (1 << RANDOM_BITS) - 1)
    return ((_NOW_MS - EPOCH_MS + ms) << LOW_BITS) | (region << RANDOM_BITS) | (1 + low)


def message_id_for(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):026X}"[:26]  # a ULID's 26 characters


def user_id_for(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))  # an IdP subject (Cognito: a UUID)


def make_chat(user_id: str, chat_id: int, character_id: int, idem: str | None) -> Chat:
    return Chat(
        chat_id=chat_id,
        user_id=user_id,
        character_id=character_id,
        created_at=_CREATED_AT,
        idempotency_key=idem,
    )


def make_message(
    rng: random.Random, content: str, role: Literal["character", "user"] = "character"
) -> Message:
    return Message(message_id=message_id_for(rng), role=role, content=content, created_at=_CREATED_AT)


def demo_character() -> tuple[Character, dict[str, Any]]:
    """The largest demo card of ``characters/``, as ``chats-admin import-characters`` stores it."""
    import json

    best: tuple[int, Character, dict[str, Any]] | None = None
    for path in sorted((ROOT / "characters").glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        character = CharacterCard.model_validate(raw).to_character()
        size = item_bytes(character_item(character, raw))
        if best is None or size > best[0]:
            best = (size, character, raw)
    assert best is not None
    return best[1], best[2]


@dataclass(frozen=True)
class Sizes:
    """Item sizes (bytes) of one user's items, from the builders."""

    chat: int
    entry: int
    first_message: int
    idempotency: int
    character: int


def sizes_for(
    user_id: str, chat: Chat, message: Message, character: Character, card: dict[str, Any]
) -> Sizes:
    record = IdempotencyRecord(
        user_id=user_id,
        key=chat.idempotency_key or str(uuid.UUID(int=0)),
        chat_id=chat.chat_id,
        character_id=chat.character_id,
        created_at=chat.created_at,
        message=message,
        expires_at=_NOW_MS // 1000 + 86_400,
    )
    return Sizes(
        chat=item_bytes(chat_item(chat)),
        entry=item_bytes(user_entry_item(chat)),
        first_message=item_bytes(message_item(chat, message)),
        idempotency=item_bytes(idempotency_item(record)),
        character=item_bytes(character_item(character, card)),
    )


# ---------------------------------------------------------------- one request's charges, per partition key

Charge = tuple[str, float, float]  # partition key, RCU, WCU


def list_charges(user_id: str, chats: int, entry_size: int) -> list[Charge]:
    read = min(chats, LIST_LIMIT + 1)  # the page reads limit + 1 entries (one Query while any is live)
    return [(keys.user_pk(user_id), query_units([entry_size] * read), 0.0)]


def initialize_charges(
    user_id: str,
    chat_id: int,
    character_id: int,
    sizes: Sizes,
    *,
    idempotent: bool,
    cached: bool,
    counter: bool,
) -> list[Charge]:
    """1 TransactWriteItems (chat, entry, first message, idempotency record), + 1 GetItem when uncached."""
    t = {"transactional": True}
    charges: list[Charge] = [
        (keys.chat_pk(chat_id), 0.0, write_units(sizes.chat, **t) + write_units(sizes.first_message, **t)),
        (keys.user_pk(user_id), 0.0, write_units(sizes.entry, **t)),
    ]
    if idempotent:
        charges.append((keys.user_pk(user_id), 0.0, write_units(sizes.idempotency, **t)))
    if counter:
        charges.append((keys.user_pk(user_id), 0.0, COUNTER_WCU))
    if not cached:
        charges.append((keys.character_pk(character_id), read_units(sizes.character, consistent=False), 0.0))
    return charges


def replay_charges(user_id: str, chat_id: int, sizes: Sizes) -> list[Charge]:
    """A cancelled transaction is still billed (as the writes it would have made) + 1 consistent GetItem."""
    charges = initialize_charges(user_id, chat_id, 0, sizes, idempotent=True, cached=True, counter=False)
    return [*charges, (keys.chat_pk(chat_id), read_units(sizes.chat), 0.0)]


def delete_charges(user_id: str, chat_id: int, sizes: Sizes) -> list[Charge]:
    """1 TransactWriteItems: the chat record and the list entry."""
    return [
        (keys.chat_pk(chat_id), 0.0, write_units(sizes.chat, transactional=True)),
        (keys.user_pk(user_id), 0.0, write_units(sizes.entry, transactional=True)),
    ]


# ---------------------------------------------------------------- purges (the cleanup's calls, in order)


@dataclass(frozen=True)
class Call:
    name: str
    pk: str
    rcu: float
    wcu: float
    seconds: float


def purge_calls(
    user_id: str, chat_id: int, message_sizes: Sequence[int], *, idempotent: bool, ttl: bool = False
) -> list[Call]:
    """What ``cleanup.purge_chat`` sends: the list entry, the idempotency record, then keys-only Query pages of
    ``PAGE_SIZE`` (full item sizes billed, strongly consistent) each followed by BatchWriteItem of 25. After a TTL
    removal (``ttl``) the pages are filtered to the items TTL would not delete - none here, every item of a chat
    being written with its expiresAt - so the same reads and no message deletes."""
    user_pk, chat_pk = keys.user_pk(user_id), keys.chat_pk(chat_id)
    calls = [Call("BatchWriteItem", user_pk, 0.0, 1.0, BATCH_WRITE_S)]  # entry already gone: still 1 WCU
    if idempotent:
        calls.append(Call("DeleteItem", user_pk, 0.0, 1.0, DELETE_ITEM_S))
    pages = [message_sizes[i : i + PAGE_SIZE] for i in range(0, len(message_sizes), PAGE_SIZE)] or [[]]
    if len(message_sizes) and len(message_sizes) % PAGE_SIZE == 0:
        pages.append([])  # DynamoDB answers a full page with a LastEvaluatedKey: one more, empty page
    for page in pages:
        calls.append(Call("Query", chat_pk, query_units(page), 0.0, QUERY_PAGE_S))
        if ttl:
            continue
        for start in range(0, len(page), MAX_BATCH_WRITE):
            chunk = page[start : start + MAX_BATCH_WRITE]
            calls.append(Call("BatchWriteItem", chat_pk, 0.0, batch_delete_units(chunk), BATCH_WRITE_S))
    return calls


def busiest_second(calls: Sequence[Call], pk: str) -> tuple[float, float]:
    """RCU/WCU on ``pk`` in the busiest second of sequential ``calls`` (a sliding 1 s window)."""
    t, events = 0.0, []
    for call in calls:
        t += call.seconds
        if call.pk == pk:
            events.append((t, call.rcu, call.wcu))
    best = (0.0, 0.0)
    lo = 0
    rcu = wcu = 0.0
    for hi in range(len(events)):
        rcu += events[hi][1]
        wcu += events[hi][2]
        while events[hi][0] - events[lo][0] >= 1.0 - 1e-9:  # completions less than 1 s apart
            rcu -= events[lo][1]
            wcu -= events[lo][2]
            lo += 1
        best = (max(best[0], rcu), max(best[1], wcu))
    return best


# ---------------------------------------------------------------- distributions


def pareto_top(rng: random.Random, population: int, k: int, alpha: float, x_min: float) -> list[float]:
    """The k largest of ``population`` Pareto(alpha, x_min) draws, via exponential spacings of uniforms."""
    values, spacing = [], 0.0
    for _ in range(k):
        spacing += rng.expovariate(1.0)
        values.append(x_min * (population / spacing) ** (1.0 / alpha))
    return values


def pareto_draw(rng: random.Random, alpha: float, x_min: float) -> float:
    return float(x_min * (1.0 - rng.random()) ** (-1.0 / alpha))


def pareto_mean(alpha: float, x_min: float, cap: float) -> float:
    """Mean of min(cap, Pareto(alpha, x_min))."""
    return float(
        x_min * alpha / (alpha - 1) * (1 - (x_min / cap) ** (alpha - 1)) + cap * (x_min / cap) ** alpha
    )


def zipf_weights(n: int, s: float) -> list[float]:
    weights = [1.0 / (rank**s) for rank in range(1, n + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def content_bytes(rng: random.Random, median: float) -> int:
    return min(CONTENT_CAP, max(1, int(rng.lognormvariate(math.log(median), CONTENT_SIGMA))))


def messages_per_chat(rng: random.Random) -> int:
    return min(MESSAGES_CAP, max(1, int(rng.lognormvariate(math.log(MESSAGES_MEDIAN), MESSAGES_SIGMA))))


def message_size_pool(rng: random.Random, user_id: str, chat_id: int, n: int = 4096) -> list[int]:
    """Sizes of ``n`` message items (alternating user turns and replies) built by ``message_item``."""
    chat = make_chat(user_id, chat_id, 330905, None)
    sizes = []
    for i in range(n):
        median = USER_TURN_MEDIAN_BYTES if i % 2 else REPLY_MEDIAN_BYTES
        content = "x" * content_bytes(rng, median)
        sizes.append(
            item_bytes(message_item(chat, make_message(rng, content, "user" if i % 2 else "character")))
        )
    return sizes


# ---------------------------------------------------------------- the template's knobs


@dataclass(frozen=True)
class Deployment:
    cleanup_concurrency: int
    cleanup_timeout_s: int
    memory_mb: int
    batch_size: int
    parallelization: int
    max_record_age_s: int
    default_rate: float
    initialize_rate: float
    max_chats_per_user: int
    max_chats_from_template: bool


def deployment(path: Path = ROOT / "template.yaml") -> Deployment:
    template = load_template(path)
    params = template["Parameters"]
    cleanup = template["Resources"]["ChatCleanupFunction"]["Properties"]
    stream = cleanup["Events"]["ChatRemoved"]["Properties"]
    api = template["Resources"]["ChatsApi"]["Properties"]
    init_route = next(v for k, v in api.get("RouteSettings", {}).items() if k.startswith("POST /characters"))
    max_chats = params.get("MaxChatsPerUser", {}).get("Default")
    return Deployment(
        cleanup_concurrency=int(params["CleanupConcurrency"]["Default"]),
        cleanup_timeout_s=int(cleanup["Timeout"]),
        memory_mb=int(template["Globals"]["Function"]["MemorySize"]),
        batch_size=int(stream["BatchSize"]),
        parallelization=int(stream.get("ParallelizationFactor", 1)),
        max_record_age_s=int(stream["MaximumRecordAgeInSeconds"]),
        default_rate=float(api["DefaultRouteSettings"]["ThrottlingRateLimit"]),
        initialize_rate=float(init_route["ThrottlingRateLimit"]),
        max_chats_per_user=int(max_chats) if max_chats is not None else MAX_CHATS_PER_USER,
        max_chats_from_template=max_chats is not None,
    )


# ---------------------------------------------------------------- 1. the API mix


@dataclass
class MixResult:
    ledger: Ledger
    requests: dict[str, int]
    kinds: dict[str, str]  # pk -> what it is
    daily_users: int
    top_user_rps: float
    mean_chats: float


def kind_of(pk: str) -> str:
    if keys.is_user_pk(pk):
        return "user"
    if keys.is_character_pk(pk):
        return "character"
    return "chat"


def character_fetch_probability(rate: float, environments: float) -> float:
    """Share of a character's initializes that miss the 300 s cache, over ``environments`` warm environments:
    per environment a renewal cycle of one fetch, 300 s cached, then the wait for the next request."""
    per_env = rate / environments
    steady = 1.0 / (1.0 + per_env * CHARACTER_CACHE_SECONDS)
    cold = environments / ENVIRONMENT_LIFETIME_S / rate if rate else 0.0  # recycled environments start empty
    return min(1.0, steady + cold)


def warm_environments(rps: float, duration_ms: float) -> float:
    return max(1.0, rps * duration_ms / 1000.0 * WARM_POOL_FACTOR)


def simulate_mix(
    rng: random.Random, dep: Deployment, character: Character, card: dict[str, Any]
) -> MixResult:
    daily_users = int(REQUESTS_PER_SECOND * 86_400 / REQUESTS_PER_USER_DAY)
    # x_min so that the capped mean is REQUESTS_PER_USER_DAY / 86,400 requests per second
    cap = HUMAN_MAX_RPS
    x_min = REQUESTS_PER_USER_DAY / 86_400
    for _ in range(50):  # fixed point: the cap trims the mean a little
        x_min *= (REQUESTS_PER_USER_DAY / 86_400) / pareto_mean(ACTIVITY_PARETO_ALPHA, x_min, cap)
    heavy_rates = [
        min(cap, r) for r in pareto_top(rng, daily_users, HEAVY_USERS, ACTIVITY_PARETO_ALPHA, x_min)
    ]
    heavy_ids = [user_id_for(rng) for _ in heavy_rates]
    # the most active users have the most chats (up to the per-user limit)
    heavy_chats = [dep.max_chats_per_user for _ in heavy_rates]
    heavy_rps = sum(heavy_rates)

    init_rps = REQUESTS_PER_SECOND * MIX["initialize"]
    environments = warm_environments(init_rps, DURATION_MS["initialize"])
    popularity = list(itertools.accumulate(zipf_weights(CHARACTERS, CHARACTER_ZIPF_S)))
    character_ids = list(range(1, CHARACTERS + 1))
    fetch = [
        character_fetch_probability(init_rps * p, environments)
        for p in zipf_weights(CHARACTERS, CHARACTER_ZIPF_S)
    ]

    greeting = make_message(rng, render_greeting(character, "Alex"))
    probe = make_chat(heavy_ids[0], chat_id_for(rng), character.character_id, str(uuid.UUID(int=1)))
    sizes = sizes_for(heavy_ids[0], probe, greeting, character, card)

    ledger, requests = Ledger(), dict.fromkeys(MIX, 0)
    ops, op_weights = list(MIX), list(itertools.accumulate(MIX.values()))
    chats_sum = 0
    for second in range(WINDOW_SECONDS):
        # the heavy users: Poisson arrivals at their own rates
        for user_id, rate, chats in zip(heavy_ids, heavy_rates, heavy_chats, strict=True):
            for _ in range(poisson(rng, rate)):
                op = rng.choices(ops, cum_weights=op_weights)[0]
                charge_op(rng, ledger, second, op, user_id, chats, sizes, character_ids, popularity, fetch)
                requests[op] += 1
        # everyone else: fresh users, each with a heavy-tailed number of chats
        for _ in range(int(REQUESTS_PER_SECOND - heavy_rps)):
            user_id = user_id_for(rng)
            chats = min(dep.max_chats_per_user, int(pareto_draw(rng, CHATS_PARETO_ALPHA, CHATS_MIN)))
            chats_sum += chats
            op = rng.choices(ops, cum_weights=op_weights)[0]
            charge_op(rng, ledger, second, op, user_id, chats, sizes, character_ids, popularity, fetch)
            requests[op] += 1
    others = WINDOW_SECONDS * int(REQUESTS_PER_SECOND - heavy_rps)
    kinds = {pk: kind_of(pk) for _, pk in ledger.units}
    return MixResult(ledger, requests, kinds, daily_users, max(heavy_rates), chats_sum / max(1, others))


def poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def charge_op(
    rng: random.Random,
    ledger: Ledger,
    second: int,
    op: str,
    user_id: str,
    chats: int,
    sizes: Sizes,
    character_ids: list[int],
    popularity: list[float],  # cumulative
    fetch: list[float],
) -> None:
    chat_id = chat_id_for(rng)
    if op == "list":
        charges = list_charges(user_id, chats, sizes.entry)
    elif op == "delete":
        charges = delete_charges(user_id, chat_id, sizes)
    elif rng.random() < REPLAY_SHARE:
        charges = replay_charges(user_id, chat_id, sizes)
    else:
        index = rng.choices(range(len(character_ids)), cum_weights=popularity)[0]
        cached = rng.random() >= fetch[index]
        charges = initialize_charges(
            user_id,
            chat_id,
            character_ids[index],
            sizes,
            idempotent=rng.random() < IDEMPOTENCY_KEY_SHARE,
            cached=cached,
            counter=True,
        )
    for pk, rcu, wcu in charges:
        ledger.add(second, pk, rcu, wcu)


# ---------------------------------------------------------------- 2. the character item


@dataclass(frozen=True)
class CharacterLoad:
    environments: float
    top_initialize_rps: float
    cached_rcu: float
    uncached_rcu: float
    scale_out_rcu: float
    item_bytes: int


def character_load(item_size: int) -> CharacterLoad:
    init_rps = REQUESTS_PER_SECOND * MIX["initialize"]
    environments = warm_environments(init_rps, DURATION_MS["initialize"])
    top = init_rps * zipf_weights(CHARACTERS, CHARACTER_ZIPF_S)[0]
    per_read = read_units(item_size, consistent=False)
    return CharacterLoad(
        environments=environments,
        top_initialize_rps=top,
        cached_rcu=top * character_fetch_probability(top, environments) * per_read,
        uncached_rcu=top * per_read,
        scale_out_rcu=LAMBDA_SCALE_OUT_PER_S * per_read,  # every new environment reads it in its first second
        item_bytes=item_size,
    )


# ---------------------------------------------------------------- 3. fan-out


@dataclass(frozen=True)
class Purge:
    messages: int
    calls: int
    rcu: float
    wcu: float
    seconds: float
    peak_rcu: float
    peak_wcu: float


def purge_of(rng: random.Random, pool: Sequence[int], messages: int, *, ttl: bool = False) -> Purge:
    user_id, chat_id = user_id_for(rng), chat_id_for(rng)
    sizes = [pool[rng.randrange(len(pool))] for _ in range(messages)]
    calls = purge_calls(user_id, chat_id, sizes, idempotent=True, ttl=ttl)
    peak = busiest_second(calls, keys.chat_pk(chat_id))
    return Purge(
        messages=messages,
        calls=len(calls),
        rcu=sum(c.rcu for c in calls),
        wcu=sum(c.wcu for c in calls),
        seconds=sum(c.seconds for c in calls) + RECORD_OVERHEAD_S,
        peak_rcu=peak[0],
        peak_wcu=peak[1],
    )


@dataclass(frozen=True)
class Storm:
    chats: int
    purge_seconds: float  # sum over the chats
    wcu: float
    rcu: float
    concurrency: int
    drain_seconds: float
    lambda_usd: float
    dynamodb_usd: float


def storm(
    rng: random.Random,
    pool: Sequence[int],
    dep: Deployment,
    chats: int,
    sample: int = 2000,
    *,
    ttl: bool = False,
) -> Storm:
    """``chats`` purges (heavy-tailed message counts, a sample scaled up) at the cleanup's concurrency; ``ttl``:
    purges after TTL removals (messages left to TTL)."""
    seconds = wcu = rcu = 0.0
    for _ in range(sample):
        purge = purge_of(rng, pool, messages_per_chat(rng), ttl=ttl)
        seconds, wcu, rcu = seconds + purge.seconds, wcu + purge.wcu, rcu + purge.rcu
    scale = chats / sample
    concurrency = dep.cleanup_concurrency  # the table's shards x ParallelizationFactor exceed it at this size
    total_s = seconds * scale
    invocations = chats / dep.batch_size
    lambda_usd = total_s * dep.memory_mb / 1024 * LAMBDA_ARM64_USD_PER_GB_S + invocations * (
        LAMBDA_USD_PER_MILLION_REQUESTS / 1e6
    )
    dynamodb_usd = wcu * scale * DDB_USD_PER_MILLION_WRU / 1e6 + rcu * scale * DDB_USD_PER_MILLION_RRU / 1e6
    return Storm(
        chats, total_s, wcu * scale, rcu * scale, concurrency, total_s / concurrency, lambda_usd, dynamodb_usd
    )


@dataclass(frozen=True)
class AccountDeletion:
    chats: int
    calls: int
    seconds: float
    user_peak_wcu: float
    user_rcu: float
    purges: Storm


def account_deletion(rng: random.Random, pool: Sequence[int], dep: Deployment, chats: int) -> AccountDeletion:
    """``cleanup.delete_user_data``: keys-only pages of USER#, per 25 items one BatchWriteItem of their chat
    records (25 different CHAT# partitions) and one of the items themselves; then every chat's purge."""
    user_id = user_id_for(rng)
    chat = make_chat(user_id, chat_id_for(rng), 330905, None)
    entry, record = item_bytes(user_entry_item(chat)), item_bytes(chat_item(chat))
    user_pk = keys.user_pk(user_id)
    calls: list[Call] = []
    for start in range(0, chats, PAGE_SIZE):
        page = min(PAGE_SIZE, chats - start)
        calls.append(Call("Query", user_pk, query_units([entry] * page), 0.0, QUERY_PAGE_S))
        for group in range(0, page, MAX_BATCH_WRITE):
            n = min(MAX_BATCH_WRITE, page - group)
            calls.append(
                Call("BatchWriteItem", "CHAT#*", 0.0, batch_delete_units([record] * n), BATCH_WRITE_S)
            )
            calls.append(Call("BatchWriteItem", user_pk, 0.0, batch_delete_units([entry] * n), BATCH_WRITE_S))
    peak = busiest_second(calls, user_pk)
    return AccountDeletion(
        chats=chats,
        calls=len(calls),
        seconds=sum(c.seconds for c in calls),
        user_peak_wcu=peak[1],
        user_rcu=sum(c.rcu for c in calls),
        purges=storm(rng, pool, dep, chats, sample=min(chats, 2000)),
    )


# ---------------------------------------------------------------- 5. cost


@dataclass(frozen=True)
class Cost:
    users_per_month: float
    dynamodb_requests: float
    dynamodb_storage: float
    lambda_api: float
    lambda_cleanup: float
    api_gateway: float
    storage_gb: float

    @property
    def total(self) -> float:
        return (
            self.dynamodb_requests
            + self.dynamodb_storage
            + self.lambda_api
            + self.lambda_cleanup
            + self.api_gateway
        )

    def per_million_users(self, value: float) -> float:
        return value / (self.users_per_month / 1e6)


def monthly_cost(mix: MixResult, dep: Deployment, deletes: Storm, message_bytes: float, sizes: Sizes) -> Cost:
    seconds = WINDOW_SECONDS
    rcu, wcu = mix.ledger.totals()
    rcu_s, wcu_s = rcu / seconds, wcu / seconds
    # every API delete (and every expiry, in steady state as many as creations minus deletes) purges its chat
    purge_rate = REQUESTS_PER_SECOND * MIX["delete"]  # API deletes; chats kept until retention: see main()
    scale = purge_rate / deletes.chats
    purge_wcu_s, purge_rcu_s = deletes.wcu * scale, deletes.rcu * scale
    ddb = (wcu_s + purge_wcu_s) * SECONDS_PER_MONTH * DDB_USD_PER_MILLION_WRU / 1e6 + (
        rcu_s + purge_rcu_s
    ) * SECONDS_PER_MONTH * DDB_USD_PER_MILLION_RRU / 1e6
    gb = dep.memory_mb / 1024
    requests_month = REQUESTS_PER_SECOND * SECONDS_PER_MONTH
    gb_s = sum(
        requests_month * share * (DURATION_MS[op] + COLD_START_SHARE * COLD_INIT_MS) / 1000 * gb
        for op, share in MIX.items()
    )
    lambda_api = gb_s * LAMBDA_ARM64_USD_PER_GB_S + requests_month * LAMBDA_USD_PER_MILLION_REQUESTS / 1e6
    lambda_cleanup = (deletes.lambda_usd * scale) * SECONDS_PER_MONTH
    users = mix.daily_users  # monthly active users at least the daily ones: this is per daily-active user
    per_chat = (
        sizes.chat
        + sizes.entry
        + 3 * STORAGE_OVERHEAD_BYTES
        + MESSAGES_MEDIAN * math.exp(MESSAGES_SIGMA**2 / 2) * (message_bytes + STORAGE_OVERHEAD_BYTES)
    )
    storage_gb = users * mix.mean_chats * per_chat / 1e9
    return Cost(
        users_per_month=users,
        dynamodb_requests=ddb,
        dynamodb_storage=storage_gb * DDB_USD_PER_GB_MONTH,
        lambda_api=lambda_api,
        lambda_cleanup=lambda_cleanup,
        api_gateway=requests_month * HTTP_API_USD_PER_MILLION / 1e6,
        storage_gb=storage_gb,
    )


# ---------------------------------------------------------------- 4. pathological users


def hammering_initialize(sizes: Sizes) -> tuple[float, float]:
    """WCU one initialize puts on the caller's USER# partition, and the request rate that saturates it."""
    per_request = sum(
        w
        for pk, _, w in initialize_charges("u", 1, 1, sizes, idempotent=True, cached=True, counter=True)
        if keys.is_user_pk(pk)
    )
    return per_request, PARTITION_WCU / per_request


# ---------------------------------------------------------------- report


def pct(value: float, ceiling: float) -> str:
    return f"{100 * value / ceiling:.2f}%"


def hours(seconds: float) -> str:
    return (
        f"{seconds / 3600:.1f} h"
        if seconds >= 3600
        else f"{seconds / 60:.1f} min"
        if seconds >= 60
        else f"{seconds:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    dep = deployment()
    character, card = demo_character()

    print(
        f"make scale (seed {args.seed}): {REQUESTS_PER_SECOND:,} requests/s, mix "
        + ", ".join(f"{op} {share:.0%}" for op, share in MIX.items())
        + f", {WINDOW_SECONDS} s window; list pages of {LIST_LIMIT} (+1 read; one Query unless a page starts with expired entries)"
    )
    print(
        f"template: CleanupConcurrency {dep.cleanup_concurrency}, cleanup Timeout {dep.cleanup_timeout_s} s, "
        f"MemorySize {dep.memory_mb} MB, stream BatchSize {dep.batch_size}, ParallelizationFactor "
        f"{dep.parallelization}, MaximumRecordAgeInSeconds {dep.max_record_age_s}, route throttles "
        f"{dep.default_rate:g}/s (initialize {dep.initialize_rate:g}/s), MaxChatsPerUser {dep.max_chats_per_user}"
        + ("" if dep.max_chats_from_template else " (assumed: not in this template yet)")
    )

    mix = simulate_mix(rng, dep, character, card)
    ledger = mix.ledger
    peaks = ledger.peaks()
    rcu, wcu = ledger.totals()
    print(
        f"\n1. API mix: {sum(mix.requests.values()):,} requests ({', '.join(f'{k} {v:,}' for k, v in mix.requests.items())}), "
        f"{mix.daily_users:,} daily active users at {REQUESTS_PER_USER_DAY:g} requests/day (Pareto alpha "
        f"{ACTIVITY_PARETO_ALPHA}, capped at {HUMAN_MAX_RPS:g}/s: the busiest user {mix.top_user_rps:.2f}/s), "
        f"mean {mix.mean_chats:.1f} chats per user"
    )
    print(
        f"   table: {rcu / WINDOW_SECONDS:,.0f} RCU/s, {wcu / WINDOW_SECONDS:,.0f} WCU/s "
        f"(quota {TABLE_QUOTA_UNITS:,} each; a new on-demand table starts at {NEW_TABLE_WARM_RCU:,} RCU / "
        f"{NEW_TABLE_WARM_WCU:,} WCU: pre-warm it), {len(peaks):,} partition keys touched"
    )
    print("   hottest partition keys, busiest second (ceiling 3,000 RCU / 1,000 WCU):")
    worst = 0.0
    for kind in ("user", "character", "chat"):
        ranked = sorted(
            (p for p in peaks.items() if mix.kinds[p[0]] == kind), key=lambda p: -share_of_ceiling(*p[1])
        )
        for pk, (r, w) in ranked[:2]:
            worst = max(worst, share_of_ceiling(r, w))
            label = pk if len(pk) < 30 else pk[:28] + "…"
            print(
                f"     {kind:9s} {label:31s} {r:7.1f} RCU/s ({pct(r, PARTITION_RCU):>6s})  {w:6.1f} WCU/s ({pct(w, PARTITION_WCU):>6s})"
            )
    print(
        f"   goal <= {GOAL_SHARE:.0%} of a ceiling: {'MET' if worst <= GOAL_SHARE else 'MISSED'} (worst {worst:.2%})"
    )

    print(
        f"\n2. character item ({CHARACTERS:,} characters, Zipf s={CHARACTER_ZIPF_S}; cache {CHARACTER_CACHE_SECONDS:g} s per environment):"
    )
    demo_size = item_bytes(character_item(character, card))
    big_card = {
        **card,
        "data": {**card["data"], "character_book": {"entries": [{"content": "x" * 1000}] * 100}},
    }
    for label, size in (
        ("demo card", demo_size),
        ("100-entry lorebook card", item_bytes(character_item(character, big_card))),
    ):
        load = character_load(size)
        print(
            f"   {label} ({size:,} B, {read_units(size, consistent=False):g} RCU per eventually consistent GetItem): "
            f"top character {load.top_initialize_rps:.0f} initialize/s over {load.environments:.0f} warm "
            f"environments -> {load.cached_rcu:.2f} RCU/s cached ({pct(load.cached_rcu, PARTITION_RCU)}), "
            f"{load.uncached_rcu:.0f} RCU/s without the cache ({pct(load.uncached_rcu, PARTITION_RCU)}), "
            f"a scale-out of {LAMBDA_SCALE_OUT_PER_S} new environments/s {load.scale_out_rcu:.0f} RCU/s "
            f"({pct(load.scale_out_rcu, PARTITION_RCU)})"
        )

    user, chat_id = user_id_for(rng), chat_id_for(rng)
    pool = message_size_pool(rng, user, chat_id)
    mean_message = sum(pool) / len(pool)
    print(
        f"\n3. fan-out (message items {min(pool)}-{max(pool)} B, mean {mean_message:.0f} B; BatchWriteItem "
        f"{BATCH_WRITE_S * 1000:g} ms, Query page {QUERY_PAGE_S * 1000:g} ms; concurrency {dep.cleanup_concurrency}):"
    )
    for messages in LONG_CHATS:
        p = purge_of(rng, pool, messages)
        print(
            f"   purge of a {messages:,}-message chat: {p.calls:,} calls, {p.wcu:,.0f} WCU + {p.rcu:,.0f} RCU, "
            f"{hours(p.seconds)} ({math.ceil(p.seconds / (dep.cleanup_timeout_s - 15))} invocation(s)); its CHAT# "
            f"partition {p.peak_wcu:,.0f} WCU/s ({pct(p.peak_wcu, PARTITION_WCU)}), {p.peak_rcu:,.0f} RCU/s; "
            f"paced to {GOAL_SHARE:.0%} of the ceiling it would take {hours(p.wcu / (GOAL_SHARE * PARTITION_WCU))}"
        )
    print(
        "   (a purge is the one writer of a deleted chat's partition: at the ceiling DynamoDB throttles the purge "
        "itself, which delete_items retries with backoff; adaptive capacity isolates the hot key)"
    )
    steady = storm(rng, pool, dep, 20_000)
    purge_rate = REQUESTS_PER_SECOND * MIX["delete"]
    mean_purge = steady.purge_seconds / steady.chats
    needed = purge_rate * mean_purge
    print(
        f"   steady state: {purge_rate:,.0f} API deletes/s, each purge {mean_purge * 1000:.0f} ms and "
        f"{steady.wcu / steady.chats:.0f} WCU on average (messages per chat lognormal, median "
        f"{MESSAGES_MEDIAN:g}, mean {MESSAGES_MEDIAN * math.exp(MESSAGES_SIGMA**2 / 2):.0f}): needs {needed:.0f} "
        f"concurrent purges and {purge_rate * steady.wcu / steady.chats:,.0f} WCU/s; CleanupConcurrency "
        f"{dep.cleanup_concurrency} clears {dep.cleanup_concurrency / mean_purge:,.0f}/s -> "
        + (
            "keeps up"
            if dep.cleanup_concurrency >= needed
            else f"FALLS BEHIND (set CleanupConcurrency >= {math.ceil(needed * 1.5)}; records older than "
            f"{dep.max_record_age_s} s are dropped to the DLQ -> chats-admin purge-orphans)"
        )
    )
    deletion = account_deletion(rng, pool, dep, DELETED_ACCOUNT_CHATS)
    print(
        f"   UserDeleted of a {deletion.chats:,}-chat account: {deletion.calls:,} calls in {hours(deletion.seconds)} "
        f"(1 invocation of {dep.cleanup_timeout_s} s), its USER# partition {deletion.user_peak_wcu:,.0f} WCU/s "
        f"({pct(deletion.user_peak_wcu, PARTITION_WCU)}, nobody else's); then {deletion.chats:,} purges: "
        f"{deletion.purges.wcu:,.0f} WCU, {hours(deletion.purges.drain_seconds)} at {deletion.purges.concurrency} "
        f"concurrent (${deletion.purges.dynamodb_usd + deletion.purges.lambda_usd:,.2f})"
    )
    expiry = storm(rng, pool, dep, RETENTION_EXPIRED_CHATS, ttl=True)
    per_hour = expiry.chats / expiry.drain_seconds * 3600
    arrival = RETENTION_EXPIRED_CHATS / TTL_SPREAD_HOURS
    backlog_age = max(0.0, (RETENTION_EXPIRED_CHATS / per_hour - TTL_SPREAD_HOURS)) * 3600
    print(
        f"   retention change expiring {expiry.chats:,} chats: {expiry.wcu / 1e6:,.1f} M WCU + {expiry.rcu / 1e6:,.1f} M RCU "
        f"(list entries and idempotency records; the messages are TTL's, free), {per_hour:,.0f} chats/h at {expiry.concurrency} -> drained in {hours(expiry.drain_seconds)}, "
        f"~{expiry.wcu / expiry.drain_seconds:,.0f} WCU/s table-wide; TTL releasing them over "
        f"{TTL_SPREAD_HOURS:g} h ({arrival:,.0f}/h): "
        + (
            "no backlog beyond the spread"
            if per_hour >= arrival
            else f"records wait up to {hours(backlog_age)}, {'beyond' if backlog_age > dep.max_record_age_s else 'within'} "
            f"MaximumRecordAgeInSeconds {dep.max_record_age_s} s"
        )
        + f"; ${expiry.dynamodb_usd + expiry.lambda_usd:,.0f} (alone: it shares the concurrency with the steady purges)"
    )
    for concurrency in (dep.cleanup_concurrency, 25, 50):
        print(
            f"     at CleanupConcurrency {concurrency}: {expiry.chats / (expiry.purge_seconds / concurrency) * 3600:,.0f} chats/h, "
            f"{expiry.wcu / (expiry.purge_seconds / concurrency):,.0f} WCU/s"
        )

    greeting = make_message(rng, render_greeting(character, "Alex"))
    probe_user = user_id_for(rng)
    sizes = sizes_for(
        probe_user,
        make_chat(probe_user, chat_id_for(rng), character.character_id, "k" * 36),
        greeting,
        character,
        card,
    )
    per_request, saturating = hammering_initialize(sizes)
    print("\n4. pathological users:")
    print(
        f"   a script hammering initialize puts {per_request:g} WCU per request on its own USER# partition (entry, "
        f"idempotency record, the per-user counter): the partition saturates at {saturating:.0f} requests/s. "
        f"But first the route throttle, {dep.initialize_rate:g}/s for the whole stage (not per caller), is "
        f"reached: the script takes the route's budget from everyone (429s for all) at "
        f"{dep.initialize_rate * per_request:.0f} WCU/s ({pct(dep.initialize_rate * per_request, PARTITION_WCU)}) on its partition. "
        f"MaxChatsPerUser ({dep.max_chats_per_user}) ends its creations after {dep.max_chats_per_user} chats "
        f"(its list stays one {read_units((LIST_LIMIT + 1) * sizes.entry):g}-RCU Query)."
    )
    list_rcu = list_charges("u", dep.max_chats_per_user, sizes.entry)[0][1]
    print(
        f"   a script hammering list costs {list_rcu:g} RCU per request: {PARTITION_RCU / list_rcu:,.0f}/s to saturate its "
        f"partition, far above the stage's {dep.default_rate:g}/s. At {REQUESTS_PER_SECOND:,}/s the template's route "
        f"throttles must be raised (they are stage-wide: {REQUESTS_PER_SECOND * MIX['initialize']:,.0f} initialize/s "
        f"against {dep.initialize_rate:g}/s); DynamoDB throttles only the hot key (adaptive capacity isolates it), "
        f"so a per-caller limit (WAF rate rule on a CloudFront front, or a REST API usage plan) is what keeps one "
        f"script from taking the stage's budget."
    )

    cost = monthly_cost(mix, dep, steady, mean_message, sizes)
    m = cost.per_million_users
    print(
        f"\n5. monthly cost at {REQUESTS_PER_SECOND:,} requests/s (on-demand us-east-1 prices taken {PRICES_TAKEN}), per million daily "
        f"active users ({cost.users_per_month / 1e6:.1f} M in all, {REQUESTS_PER_USER_DAY:g} requests/day each):"
    )
    for label, value in (
        ("DynamoDB requests (API + purges)", cost.dynamodb_requests),
        (f"DynamoDB storage ({cost.storage_gb:,.0f} GB)", cost.dynamodb_storage),
        ("Lambda API functions", cost.lambda_api),
        ("Lambda cleanup", cost.lambda_cleanup),
        ("API Gateway HTTP API", cost.api_gateway),
    ):
        print(f"   {label:36s} ${m(value):10,.2f}   (all users ${value:12,.0f})")
    print(f"   {'total':36s} ${m(cost.total):10,.2f}   (all users ${cost.total:12,.0f})")
    expired_rate = REQUESTS_PER_SECOND * (MIX["initialize"] - MIX["delete"])
    month = expired_rate * SECONDS_PER_MONTH

    def purge_usd(purges: Storm) -> float:
        per_chat = (purges.wcu * DDB_USD_PER_MILLION_WRU + purges.rcu * DDB_USD_PER_MILLION_RRU) / 1e6
        return per_chat / purges.chats * month

    expiring = storm(rng, pool, dep, 20_000, ttl=True)
    print(
        f"   with ChatRetentionDays > 0 the other {expired_rate:,.0f} chats/s expire: their purges add "
        f"${m(purge_usd(expiring)):,.2f} per million users (${purge_usd(expiring):,.0f}): the list entry, the "
        f"idempotency record and the reads, the messages being left to TTL (free); purging the messages too, as "
        f"an API delete's purge does, would cost ${m(purge_usd(steady)):,.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
