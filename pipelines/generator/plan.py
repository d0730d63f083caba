"""Client-level plan: who behaves how, decided once for the whole population.

Everything here is per client (small arrays); order lines etc. are produced batch by
batch from this plan in :mod:`pipelines.generator.simulate`.

Days are integers counted from 1970-01-01.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipelines.generator import config as cfg

FORWARD, BACKWARD = 1, -1
NO_DAY = -(10**6)  # "no such day" marker for optional day columns
FAR_FUTURE = 10**7


@dataclass
class Managers:
    ids: np.ndarray  # str
    names: np.ndarray
    level: np.ndarray  # str
    team: np.ndarray  # int team index
    hired: np.ndarray  # day
    left: np.ndarray  # day or NO_DAY
    team_head: np.ndarray  # per team: manager index of the head
    team_director: np.ndarray  # per team: manager index of the director
    team_names: tuple[str, ...]


@dataclass
class ClientPlan:
    n: int
    end: int
    hist_start: int
    segment: np.ndarray  # int segment index
    cadence: np.ndarray  # float days
    jitter: np.ndarray  # relative gap jitter (on a grid: relative shift of each order)
    on_grid: np.ndarray  # bool: order k at anchor - k * cadence + jitter (no drift)
    direction: np.ndarray  # FORWARD / BACKWARD
    anchor: np.ndarray  # first order (forward) or last order (backward)
    first_day: np.ndarray  # no order before
    last_day: np.ndarray  # no order after
    extra_day: np.ndarray  # one extra order day (reactivation) or NO_DAY
    order_value: np.ndarray  # typical order value
    value_sigma: np.ndarray
    seasonal: np.ndarray  # bool
    trend: np.ndarray  # yearly growth factor
    drop_from: np.ndarray  # day from which values are multiplied by drop_factor
    drop_factor: np.ndarray
    planted: np.ndarray  # bool: no cancellations/returns, no complaints
    unprofitable: np.ndarray  # bool: prices below cost
    payer: np.ndarray  # payer type
    terms: np.ndarray  # payment terms days
    created: np.ndarray  # day
    updated: np.ndarray  # day
    contact_until: np.ndarray  # last day of interactions
    contact_rate: np.ndarray  # mean days between interactions
    dm_left_day: np.ndarray  # planted decision-maker departure day or NO_DAY
    account_manager: np.ndarray  # manager index
    tier: np.ndarray  # str or None (object)
    price_factor: np.ndarray
    groups: dict[str, list[int]] = field(default_factory=dict)


def _group_size(clients: int) -> int:
    return max(2, round(clients / 50))


def build_managers(rng: np.random.Generator, clients: int, end: int, hist_start: int) -> Managers:
    n_teams = int(np.clip(clients // 120, 3, len(cfg.TEAM_NAMES)))
    n_directors = max(1, n_teams // 3)
    n_specialists = max(2 * n_teams, clients // 35)
    levels = ["director"] * n_directors + ["head"] * n_teams + ["specialist"] * n_specialists
    team = np.concatenate(
        [
            np.arange(n_directors) % n_teams,
            np.arange(n_teams),
            np.arange(n_specialists) % n_teams,
        ]
    )
    n = len(levels)
    hired = hist_start - rng.integers(30, 3000, n)
    # Specialists hired during the history window.
    spec = np.arange(n) >= n_directors + n_teams
    late_hire = spec & (rng.random(n) < 0.15)
    hired[late_hire] = rng.integers(hist_start, end - 60, late_hire.sum())
    left = np.full(n, NO_DAY, dtype=np.int64)
    leavers = spec & ~late_hire & (rng.random(n) < 0.07)
    left[leavers] = rng.integers(hist_start + 30, end - 20, leavers.sum())
    names = _person_names(rng, n)
    team_director = np.arange(n_teams) % n_directors  # directors come first
    return Managers(
        ids=np.array([f"M{i + 1:04d}" for i in range(n)]),
        names=names,
        level=np.array(levels),
        team=team,
        hired=hired,
        left=left,
        team_head=n_directors + np.arange(n_teams),
        team_director=team_director,
        team_names=tuple(cfg.TEAM_NAMES[:n_teams]),
    )


def _person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    first = np.array(cfg.FIRST_NAMES)[rng.integers(0, len(cfg.FIRST_NAMES), n)]
    last = np.array(cfg.LAST_NAMES)[rng.integers(0, len(cfg.LAST_NAMES), n)]
    return np.char.add(np.char.add(first, " "), last)


def _assign_groups(rng: np.random.Generator, clients: int) -> dict[str, list[int]]:
    """Pick disjoint client index sets for the planted behaviours (base groups)."""
    k = _group_size(clients)
    sizes = {f"steady_{s}": k for s in cfg.SEGMENT_NAMES}
    sizes.update(
        {
            "churner_low_value": k,
            "winback_valuable": k,
            "unprofitable_churner": k,
            "winback_revised_terms": k,
            "unprofitable_steady": k,
            "late_payer_steady": k,
            "volume_drop": k,
            "new_client": k,
            "reactivated": k,
            "decision_maker_left": k,
            "decision_maker_left_long_ago": k,
        }
    )
    total = sum(sizes.values())
    if total > 0.6 * clients:
        raise ValueError(f"clients={clients} is too small for the planted groups (need >= 60)")
    order = rng.permutation(clients)
    groups: dict[str, list[int]] = {}
    pos = 0
    for name, size in sizes.items():
        groups[name] = sorted(int(i) for i in order[pos : pos + size])
        pos += size
    return groups


def build_plan(
    rng: np.random.Generator, clients: int, years: int, end: int, managers: Managers
) -> ClientPlan:
    n = clients
    hist_start = end - 365 * years + 1
    seg_names = cfg.SEGMENT_NAMES
    nominal = np.array([cfg.SEGMENTS[s] for s in seg_names], dtype=float)

    # --- generic population -------------------------------------------------------------
    segment = rng.choice(len(seg_names), n, p=cfg.SEGMENT_WEIGHTS)
    cad_lo = np.where(segment == seg_names.index("public"), 0.7, 0.85)
    cad_hi = np.where(segment == seg_names.index("public"), 1.1, 1.15)
    cadence = nominal[segment] * rng.uniform(cad_lo, cad_hi)
    jitter = np.full(n, 0.25)
    direction = np.full(n, FORWARD)
    first_day = np.full(n, hist_start, dtype=np.int64)
    joiners = rng.random(n) < 0.15
    first_day[joiners] = rng.integers(hist_start, end - 30, joiners.sum())
    anchor = first_day + (rng.random(n) * cadence).astype(np.int64)
    last_day = np.full(n, end, dtype=np.int64)
    leavers = rng.random(n) < 0.12
    lo = np.minimum(anchor + (4 * cadence).astype(np.int64), end)
    last_day[leavers] = lo[leavers] + (rng.random(leavers.sum()) * (end - lo[leavers])).astype(
        np.int64
    )
    extra_day = np.full(n, NO_DAY, dtype=np.int64)
    annual = cfg.MEDIAN_ANNUAL_REVENUE * rng.lognormal(0.0, 1.0, n)
    value_sigma = np.full(n, 0.3)
    seasonal = np.ones(n, dtype=bool)
    trend = rng.lognormal(0.0, 0.25, n)
    drop_from = np.full(n, FAR_FUTURE, dtype=np.int64)
    on_grid = np.zeros(n, dtype=bool)
    drop_factor = np.ones(n)
    planted = np.zeros(n, dtype=bool)
    unprofitable = np.zeros(n, dtype=bool)
    payer = rng.choice(
        [cfg.PAYER_ON_TIME, cfg.PAYER_SOMETIMES_LATE, cfg.PAYER_POOR], n, p=[0.75, 0.17, 0.08]
    )
    terms = rng.choice(cfg.PAYMENT_TERMS, n, p=cfg.PAYMENT_TERMS_P)
    contact_rate = rng.uniform(12, 45, n)
    dm_left_day = np.full(n, NO_DAY, dtype=np.int64)
    price_factor = rng.uniform(0.92, 1.08, n)

    # --- planted groups -----------------------------------------------------------------
    groups = _assign_groups(rng, n)

    def seg_cycle(idx: list[int], allowed: tuple[str, ...]) -> np.ndarray:
        ids = np.array(idx, dtype=np.int64)
        segment[ids] = [seg_names.index(allowed[j % len(allowed)]) for j in range(len(ids))]
        return ids

    def make_planted(ids: np.ndarray, value_scale: tuple[float, float] | None = None) -> None:
        seg = segment[ids]
        fast = nominal[seg] <= 30
        # Fast segments: a little per-client jitter; slow ones exactly on the nominal cadence.
        cadence[ids] = np.where(
            fast, nominal[seg] * rng.uniform(0.97, 1.03, len(ids)), nominal[seg]
        )
        jitter[ids] = np.where(fast, 0.1, 0.03)
        first_day[ids] = hist_start
        last_day[ids] = end
        if value_scale is None:
            annual[ids] = cfg.MEDIAN_ANNUAL_REVENUE * np.clip(
                rng.lognormal(0, 0.4, len(ids)), 0.5, 2.5
            )
        else:
            annual[ids] = cfg.MEDIAN_ANNUAL_REVENUE * rng.uniform(*value_scale, len(ids))
        value_sigma[ids] = 0.03
        seasonal[ids] = False
        trend[ids] = 0.95  # a slight decline: "development" (+15 %) stays out of reach
        planted[ids] = True
        payer[ids] = cfg.PAYER_ON_TIME
        contact_rate[ids] = rng.uniform(14, 30, len(ids))

    def make_steady(ids: np.ndarray) -> None:
        """Orders on a fixed grid up to the end (no drift), last one about half a cadence ago.

        Fast and industrial clients use a cadence of 180 / n days (n orders per 180 days)
        with the grid placed half a step away from the window edges, so both 180-day
        windows of the growth rule hold exactly n orders: no accidental "development".
        Public clients (one order a year) order 55-165 days before the end.
        """
        make_planted(ids)
        seg = segment[ids]
        public = seg == seg_names.index("public")
        per_180 = {
            "horeca": (25, 26, 27),
            "retail": (12, 13),
            "wholesale": (7,),
            "industrial": (2,),
        }
        n_180 = np.ones(len(ids))
        for name, choices in per_180.items():
            sel = seg == seg_names.index(name)
            n_180[sel] = rng.choice(choices, sel.sum())
        grid = ~public
        g_ids = ids[grid]
        cadence[g_ids] = 180.0 / n_180[grid]
        jitter[g_ids] = np.floor(0.1 * cadence[g_ids]) / cadence[g_ids]  # whole days
        on_grid[g_ids] = True
        direction[ids] = BACKWARD
        anchor[g_ids] = end - np.rint(cadence[g_ids] / 2).astype(np.int64)
        p_ids = ids[public]
        anchor[p_ids] = end - rng.integers(55, 166, len(p_ids))

    def make_churner(ids: np.ndarray, ratio: tuple[float, float], value_scale) -> None:
        make_planted(ids, value_scale)
        last = end - np.rint(rng.uniform(*ratio, len(ids)) * cadence[ids]).astype(np.int64)
        direction[ids] = BACKWARD
        anchor[ids] = last
        last_day[ids] = last

    for seg in seg_names:
        make_steady(seg_cycle(groups[f"steady_{seg}"], (seg,)))

    make_churner(seg_cycle(groups["churner_low_value"], cfg.FAST_SEGMENTS), (6, 9), (0.04, 0.07))
    make_churner(seg_cycle(groups["winback_valuable"], cfg.FAST_SEGMENTS), (6, 9), (10, 20))
    ids = seg_cycle(groups["unprofitable_churner"], cfg.FAST_SEGMENTS)
    make_churner(ids, (6, 9), (10, 20))
    unprofitable[ids] = True
    ids = seg_cycle(groups["winback_revised_terms"], cfg.WEEKLY_BIWEEKLY)
    make_churner(ids, (5.5, 7), (10, 20))
    payer[ids] = cfg.PAYER_PLANTED_LATE

    ids = seg_cycle(groups["unprofitable_steady"], cfg.FAST_SEGMENTS + ("industrial",))
    make_steady(ids)
    unprofitable[ids] = True

    ids = seg_cycle(groups["late_payer_steady"], cfg.FAST_SEGMENTS)
    make_steady(ids)
    payer[ids] = cfg.PAYER_PLANTED_LATE

    ids = seg_cycle(groups["volume_drop"], cfg.FAST_SEGMENTS)
    make_steady(ids)
    drop_from[ids] = end - 92
    drop_factor[ids] = 0.25

    ids = seg_cycle(groups["new_client"], cfg.WEEKLY_BIWEEKLY)
    make_planted(ids)
    direction[ids] = FORWARD
    anchor[ids] = end - rng.integers(30, 56, len(ids))
    first_day[ids] = anchor[ids]

    # Reactivated: regular history, a silent gap, then one order in the last 10-35 days
    # (wholesale) or 10-55 days (industrial, when the history is long enough). The gap
    # (12.5-14 cadences for wholesale, 6-9 for industrial) empties the volume baseline.
    reactivated = groups["reactivated"]
    allowed = ("wholesale", "industrial") if years >= 3 else ("wholesale",)
    ids = seg_cycle(reactivated, allowed)
    make_planted(ids)
    slow = nominal[segment[ids]] > 30
    extra_day[ids] = end - np.where(
        slow, rng.integers(10, 56, len(ids)), rng.integers(10, 36, len(ids))
    )
    gap_lo, gap_hi = np.where(slow, 6.0, 12.5), np.where(slow, 9.0, 14.0)
    gap = np.rint(rng.uniform(gap_lo, gap_hi) * cadence[ids]).astype(np.int64)
    direction[ids] = BACKWARD
    anchor[ids] = extra_day[ids] - gap
    last_day[ids] = extra_day[ids]

    ids = seg_cycle(groups["decision_maker_left"], cfg.FAST_SEGMENTS + ("industrial",))
    make_steady(ids)
    dm_left_day[ids] = end - rng.integers(10, 61, len(ids))
    ids = seg_cycle(groups["decision_maker_left_long_ago"], cfg.FAST_SEGMENTS + ("industrial",))
    make_steady(ids)
    dm_left_day[ids] = end - rng.integers(200, 401, len(ids))

    # --- derived client attributes ------------------------------------------------------
    first_order = np.where(direction == FORWARD, anchor, first_day)
    created = first_order - rng.integers(3, 31, n)
    existing = first_day <= hist_start
    created[existing] = hist_start - rng.integers(30, 1500, existing.sum())
    created = np.minimum(created, end)
    contact_until = np.where(last_day < end, last_day - 10, end)  # churners fall silent
    contact_until = np.maximum(contact_until, created + 1)
    updated = created + (rng.random(n) * (end - created)).astype(np.int64)
    order_value = annual * cadence / 365.0

    # Declared tier for some clients, by value with noise; null for the rest.
    score = np.log(annual) + rng.normal(0, 0.3, n)
    rank = np.argsort(np.argsort(-score)) / n
    tier = np.full(n, None, dtype=object)
    tier[rank < 0.45] = "general"
    tier[rank < 0.15] = "key"
    tier[rank < 0.03] = "KA"
    tier[rng.random(n) < 0.25] = None

    # Account managers: active specialists and heads (heads carry fewer clients).
    active = managers.left == NO_DAY
    am_pool = np.flatnonzero(active & np.isin(managers.level, ["specialist", "head"]))
    weights = np.where(managers.level[am_pool] == "head", 0.3, 1.0)
    account_manager = rng.choice(am_pool, n, p=weights / weights.sum())

    return ClientPlan(
        n=n,
        end=end,
        hist_start=hist_start,
        segment=segment,
        cadence=cadence,
        jitter=jitter,
        on_grid=on_grid,
        direction=direction,
        anchor=anchor,
        first_day=first_day,
        last_day=last_day,
        extra_day=extra_day,
        order_value=order_value,
        value_sigma=value_sigma,
        seasonal=seasonal,
        trend=trend,
        drop_from=drop_from,
        drop_factor=drop_factor,
        planted=planted,
        unprofitable=unprofitable,
        payer=payer,
        terms=terms,
        created=created,
        updated=updated,
        contact_until=contact_until,
        contact_rate=contact_rate,
        dm_left_day=dm_left_day,
        account_manager=account_manager,
        tier=tier,
        price_factor=price_factor,
        groups=groups,
    )
