"""Vectorised simulation of one batch of clients into Arrow tables of the contract."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import ARROW_TYPES, CHANNELS, INTERACTION_KINDS, LEVELS, get_table
from pipelines.generator import config as cfg
from pipelines.generator.plan import NO_DAY, ClientPlan, Managers

US_PER_DAY = 86_400_000_000
US_PER_SECOND = 1_000_000


def arrow_schema(system: str, name: str) -> pa.Schema:
    table = get_table(system, name)
    return pa.schema(
        [pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in table.columns]
    )


def to_table(system: str, name: str, columns: dict[str, object]) -> pa.Table:
    """Build a contract table; every contract column must be given, nothing else."""
    schema = arrow_schema(system, name)
    missing = set(schema.names) ^ set(columns)
    if missing:
        raise ValueError(f"{system}.{name}: column mismatch {sorted(missing)}")
    arrays = []
    for f in schema:
        value = columns[f.name]
        if isinstance(value, pa.Array | pa.ChunkedArray):
            arrays.append(value.cast(f.type))
        elif f.type == pa.date32():
            arrays.append(pa.array(np.asarray(value, dtype=np.int32), pa.int32()).cast(f.type))
        elif f.type == pa.timestamp("us"):
            arrays.append(pa.array(np.asarray(value, dtype=np.int64), pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(value, f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "")


def nullable_days(days: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.int32(), mask=~valid).cast(pa.date32())


def nullable_ts(us: np.ndarray, valid: np.ndarray) -> pa.Array:
    return pa.array(us.astype(np.int64), pa.int64(), mask=~valid).cast(pa.timestamp("us"))


def ts_of(days: np.ndarray, rng: np.random.Generator, lo_h: int = 7, hi_h: int = 19) -> np.ndarray:
    """A timestamp (microseconds) on the given day, at a random time of day."""
    seconds = rng.integers(lo_h * 3600, hi_h * 3600, len(days))
    return days.astype(np.int64) * US_PER_DAY + seconds * US_PER_SECOND


@dataclass
class Products:
    list_price: np.ndarray
    cost_ratio: np.ndarray
    cost_known: np.ndarray
    popularity: np.ndarray
    known_idx: np.ndarray
    known_popularity: np.ndarray


def build_products(rng: np.random.Generator, n: int, end: int) -> tuple[Products, pa.Table]:
    category = rng.integers(0, len(cfg.CATEGORIES), n)
    list_price = np.round(rng.lognormal(np.log(35.0), 0.9, n), 2) + 0.5
    cost_ratio = rng.uniform(0.55, 0.8, n)
    cost_known = rng.random(n) >= 0.06
    popularity = 1.0 / (rng.permutation(n) + 5.0) ** 0.8
    popularity /= popularity.sum()
    known_idx = np.flatnonzero(cost_known)
    kp = popularity[known_idx] / popularity[known_idx].sum()
    cats = np.array(cfg.CATEGORIES)[category]
    names = np.char.add(np.char.add(cats, " item "), (np.arange(n) + 1).astype(str))
    updated = end - rng.integers(0, 900, n)
    table = to_table(
        "erp",
        "products",
        {
            "product_id": ids("SKU", np.arange(1, n + 1), 5),
            "product_name": names.tolist(),
            "category": cats.tolist(),
            "updated_at": ts_of(updated, rng),
        },
    )
    return Products(list_price, cost_ratio, cost_known, popularity, known_idx, kp), table


def managers_table(m: Managers) -> pa.Table:
    return to_table(
        "crm",
        "managers",
        {
            "manager_id": m.ids.tolist(),
            "manager_name": m.names.tolist(),
            "level": m.level.tolist(),
            "team": [m.team_names[t] for t in m.team],
            "hired_at": m.hired,
            "left_at": nullable_days(m.left, m.left != NO_DAY),
        },
    )


@dataclass
class Counters:
    order: int = 0
    invoice: int = 0
    contact: int = 0
    interaction: int = 0


def _segment_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (groups given by their sizes)."""
    total = np.cumsum(values)
    starts = np.cumsum(counts) - counts
    before = np.concatenate([[0], total])[starts]
    return total - np.repeat(before, counts)


def _schedule(rng: np.random.Generator, plan: ClientPlan, idx: np.ndarray):
    """Order days per client: returns (local client index, day) sorted by client, day."""
    c = plan.cadence[idx]
    jit = plan.jitter[idx]
    span = np.where(
        plan.direction[idx] > 0,
        plan.last_day[idx] - plan.anchor[idx],
        plan.anchor[idx] - plan.first_day[idx],
    )
    n_max = np.maximum(np.ceil(np.maximum(span, 0) / (c * (1 - jit))).astype(np.int64) + 2, 1)
    rep = np.repeat(np.arange(len(idx)), n_max)
    gaps = np.maximum(1, np.rint(c[rep] * rng.uniform(1 - jit[rep], 1 + jit[rep])))
    starts = np.cumsum(n_max) - n_max
    gaps[starts] = 0
    cum = _segment_cumsum(gaps, n_max).astype(np.int64)
    grid = plan.on_grid[idx][rep]
    if grid.any():
        # Grid clients: k-th order at k cadences from the anchor, shifted by whole days.
        k = (np.arange(len(rep)) - np.repeat(starts, n_max))[grid]
        shift_max = np.rint(c[rep][grid] * jit[rep][grid]).astype(np.int64)
        shift = np.where(k > 0, rng.integers(-shift_max, shift_max + 1), 0)
        cum[grid] = np.rint(k * c[rep][grid]).astype(np.int64) + shift
    day = plan.anchor[idx][rep] + plan.direction[idx][rep] * cum
    keep = (day >= plan.first_day[idx][rep]) & (day <= plan.last_day[idx][rep])
    local, day = rep[keep], day[keep]
    extra = plan.extra_day[idx] != NO_DAY
    local = np.concatenate([local, np.flatnonzero(extra)])
    day = np.concatenate([day, plan.extra_day[idx][extra]])
    order = np.lexsort((day, local))
    return local[order], day[order]


def simulate_batch(
    rng: np.random.Generator,
    plan: ClientPlan,
    managers: Managers,
    products: Products,
    idx: np.ndarray,
    counters: Counters,
) -> dict[str, pa.Table]:
    """Generate the clients ``idx`` (global indices) and everything they own."""
    end = plan.end
    out: dict[str, pa.Table] = {}
    client_ids = ids("C", idx + 1, 6)
    out["clients"] = _clients(rng, plan, managers, idx, client_ids)

    # --- orders -------------------------------------------------------------------------
    local, day = _schedule(rng, plan, idx)
    g = idx[local]  # global client index per order
    n_orders = len(day)
    status = np.zeros(n_orders, dtype=np.int8)  # 0 completed, 1 cancelled, 2 returned
    u = rng.random(n_orders)
    generic = ~plan.planted[g]
    status[generic & (u < 0.03)] = 1
    status[generic & (u >= 0.03) & (u < 0.05)] = 2
    month = (day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12).astype(int)
    season = np.where(plan.seasonal[g], np.array(cfg.MONTH_FACTORS)[month], 1.0)
    value = (
        plan.order_value[g]
        * season
        * plan.trend[g] ** ((day - end) / 365.0)
        * rng.lognormal(0.0, plan.value_sigma[g])
        * np.where(day >= plan.drop_from[g], plan.drop_factor[g], 1.0)
    )
    value = np.where(status == 2, value * 0.3, value)
    order_no = counters.order + 1 + np.arange(n_orders)
    counters.order += n_orders
    order_ids = ids("O", order_no, 9)
    upd_day = np.where(status == 2, np.minimum(day + rng.integers(3, 30, n_orders), end), day)
    out["orders"] = to_table(
        "erp",
        "orders",
        {
            "order_id": order_ids,
            "client_id": client_ids.take(pa.array(local)),
            "order_date": day,
            "status": np.array(["completed", "cancelled", "returned"])[status].tolist(),
            "updated_at": ts_of(upd_day, rng, 8, 20),
        },
    )

    # --- order lines --------------------------------------------------------------------
    n_lines = np.where(
        status == 2, rng.integers(1, 3, n_orders), 1 + np.minimum(rng.poisson(3.6, n_orders), 11)
    )
    orep = np.repeat(np.arange(n_orders), n_lines)
    n_total = len(orep)
    line_no = np.arange(n_total) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines) + 1
    gl = g[orep]
    prod = rng.choice(len(products.list_price), n_total, p=products.popularity)
    unprof = plan.unprofitable[gl]
    if unprof.any():
        prod[unprof] = rng.choice(products.known_idx, unprof.sum(), p=products.known_popularity)
    w = rng.exponential(1.0, n_total)
    w /= np.bincount(orep, w, minlength=n_orders)[orep]
    line_value = value[orep] * w
    cost = np.round(products.list_price[prod] * products.cost_ratio[prod], 2)
    price = np.round(products.list_price[prod] * plan.price_factor[gl], 2)
    below_cost = np.round(cost * rng.uniform(0.8, 0.92, n_total), 2)
    price = np.where(unprof, below_cost, price)
    qty = np.maximum(1.0, np.rint(line_value / price))
    gross = qty * price
    has_disc = rng.random(n_total) < 0.25
    discount = np.where(has_disc, np.round(gross * rng.uniform(0.02, 0.10, n_total), 2), 0.0)
    cost_valid = products.cost_known[prod]
    out["order_lines"] = to_table(
        "erp",
        "order_lines",
        {
            "order_id": order_ids.take(pa.array(orep)),
            "line_no": line_no,
            "product_id": ids("SKU", prod + 1, 5),
            "quantity": qty,
            "unit_price": price,
            "unit_cost": pa.array(cost, pa.float64(), mask=~cost_valid),
            "discount": discount,
        },
    )

    # --- invoices: one per completed order ----------------------------------------------
    net = np.bincount(orep, gross - discount, minlength=n_orders)
    done = np.flatnonzero(status == 0)
    out["invoices"] = _invoices(
        rng, plan, done, g, day, net, order_ids, local, client_ids, counters
    )

    # --- CRM ----------------------------------------------------------------------------
    contacts, slots = _contacts(rng, plan, idx, client_ids, counters)
    out["contacts"] = contacts
    out["interactions"] = _interactions(rng, plan, managers, idx, client_ids, slots, counters)
    return out


def _clients(rng, plan: ClientPlan, managers: Managers, idx, client_ids) -> pa.Table:
    n = len(idx)
    seg = plan.segment[idx]
    seg_names = np.array(cfg.SEGMENT_NAMES)[seg]
    pre = np.array(cfg.NAME_PREFIXES)[rng.integers(0, len(cfg.NAME_PREFIXES), n)]
    suf = np.array(cfg.NAME_SUFFIXES)[rng.integers(0, len(cfg.NAME_SUFFIXES), n)]
    names = np.char.add(
        np.char.add(np.char.add(pre, " "), suf), np.char.add(" ", (idx + 1).astype(str))
    )
    industry = [
        cfg.INDUSTRIES[s][k % len(cfg.INDUSTRIES[s])]
        for s, k in zip(seg_names, rng.integers(0, 12, n), strict=True)
    ]
    return to_table(
        "erp",
        "clients",
        {
            "client_id": client_ids,
            "client_name": names.tolist(),
            "segment": seg_names.tolist(),
            "region": np.array(cfg.REGIONS)[rng.integers(0, len(cfg.REGIONS), n)].tolist(),
            "industry": industry,
            "account_manager_id": managers.ids[plan.account_manager[idx]].tolist(),
            "declared_tier": plan.tier[idx].tolist(),
            "payment_terms_days": plan.terms[idx],
            "created_at": ts_of(plan.created[idx], rng),
            "updated_at": ts_of(plan.updated[idx], rng),
        },
    )


def _invoices(rng, plan: ClientPlan, done, g, day, net, order_ids, local, client_ids, counters):
    end = plan.end
    n = len(done)
    gd = g[done]
    issued = np.minimum(day[done] + rng.integers(0, 3, n), end)
    due = issued + plan.terms[gd]
    payer = plan.payer[gd]
    u = rng.random(n)
    offset = rng.integers(-20, 7, n)  # on time
    some = payer == cfg.PAYER_SOMETIMES_LATE
    offset[some] = np.where(
        u[some] < 0.75, rng.integers(-10, 11, some.sum()), rng.integers(20, 61, some.sum())
    )
    poor = payer == cfg.PAYER_POOR
    offset[poor] = np.where(
        u[poor] < 0.6, rng.integers(35, 111, poor.sum()), rng.integers(-5, 21, poor.sum())
    )
    late = payer == cfg.PAYER_PLANTED_LATE
    offset[late] = np.where(
        u[late] < 0.9, rng.integers(45, 121, late.sum()), rng.integers(-5, 11, late.sum())
    )
    paid = np.maximum(due + offset, issued)
    never = (payer >= cfg.PAYER_POOR) & (rng.random(n) < 0.05)
    paid_valid = (paid <= end) & ~never
    inv_no = counters.invoice + 1 + np.arange(n)
    counters.invoice += n
    upd = np.where(paid_valid, paid, issued)
    return to_table(
        "erp",
        "invoices",
        {
            "invoice_id": ids("INV", inv_no, 9),
            "client_id": client_ids.take(pa.array(local[done])),
            "order_id": order_ids.take(pa.array(done)),
            "issued_date": issued,
            "due_date": due,
            "amount": np.round(net[done], 2),
            "paid_date": nullable_days(paid, paid_valid),
            "updated_at": ts_of(upd, rng, 9, 18),
        },
    )


@dataclass
class ContactSlots:
    """Who speaks for a client at each level: original contact, optional replacement."""

    orig: np.ndarray  # (n_clients, 3) contact number
    repl: np.ndarray  # (n_clients, 3) contact number or -1
    left: np.ndarray  # (n_clients, 3) day the original left (far future if never)
    switch: np.ndarray  # (n_clients, 3) day from which the replacement speaks


def _contacts(rng, plan: ClientPlan, idx, client_ids, counters: Counters):
    end, hist_start = plan.end, plan.hist_start
    n = len(idx)
    created = plan.created[idx]
    # Three level slots per client (director, head, specialist) + 0..2 extra specialists.
    lvl = np.tile(np.arange(3), n)
    owner = np.repeat(np.arange(n), 3)
    dm = (lvl == 0) | ((lvl == 1) & (rng.random(3 * n) < 0.3))
    started = created[owner] - rng.integers(0, 700, 3 * n)
    leaves = rng.random(3 * n) < 0.2
    lo = np.maximum(hist_start, started + 30)
    hi = np.where(dm, end - 120, end)  # random decision-maker departures stay out of the window
    left = lo + (rng.random(3 * n) * np.maximum(hi - lo, 1)).astype(np.int64)
    leaves &= hi > lo
    planted_dm = plan.dm_left_day[idx] != NO_DAY
    director_slot = np.arange(n) * 3
    leaves[director_slot[planted_dm]] = True
    left[director_slot[planted_dm]] = plan.dm_left_day[idx][planted_dm]
    repl_start = left + rng.integers(5, 61, 3 * n)
    has_repl = leaves & (repl_start <= end)

    n_extra = rng.integers(0, 3, n)
    ex_owner = np.repeat(np.arange(n), n_extra)
    ex_started = created[ex_owner] + rng.integers(0, 400, len(ex_owner))
    ex_keep = ex_started <= end
    ex_owner, ex_started = ex_owner[ex_keep], ex_started[ex_keep]

    # Rows: originals, replacements, extras (then sorted by client for readability).
    r_owner = np.concatenate([owner, owner[has_repl], ex_owner])
    r_level = np.concatenate([lvl, lvl[has_repl], np.full(len(ex_owner), 2)])
    r_dm = np.concatenate([dm, dm[has_repl], np.zeros(len(ex_owner), dtype=bool)])
    r_start = np.concatenate([started, repl_start[has_repl], ex_started])
    r_left = np.concatenate(
        [left, np.zeros(has_repl.sum(), dtype=np.int64), np.zeros(len(ex_owner), dtype=np.int64)]
    )
    r_left_valid = np.concatenate([leaves, np.zeros(has_repl.sum() + len(ex_owner), dtype=bool)])
    kind = np.concatenate(
        [np.zeros(3 * n, int), np.ones(has_repl.sum(), int), np.full(len(ex_owner), 2)]
    )
    order = np.lexsort((kind, r_owner))
    rows = len(order)
    number = np.empty(rows, dtype=np.int64)
    number[order] = counters.contact + 1 + np.arange(rows)
    counters.contact += rows

    orig = number[: 3 * n].reshape(n, 3)
    repl = np.full(3 * n, -1, dtype=np.int64)
    repl[np.flatnonzero(has_repl)] = number[3 * n : 3 * n + has_repl.sum()]
    left_or_never = np.where(leaves, left, 10**7)
    switch = np.where(has_repl, repl_start, 10**7)

    o = order
    first = np.array(cfg.FIRST_NAMES)[rng.integers(0, len(cfg.FIRST_NAMES), rows)]
    last = np.array(cfg.LAST_NAMES)[rng.integers(0, len(cfg.LAST_NAMES), rows)]
    levels = np.array(LEVELS)[r_level[o]]
    pos_pick = rng.integers(0, 4, rows)
    positions = [cfg.POSITIONS[lv][k] for lv, k in zip(levels, pos_pick, strict=True)]
    upd = np.where(r_left_valid[o], r_left[o], np.maximum(r_start[o], created[r_owner[o]]))
    table = to_table(
        "crm",
        "contacts",
        {
            "contact_id": ids("P", number[o], 8),
            "client_id": client_ids.take(pa.array(r_owner[o])),
            "full_name": np.char.add(np.char.add(first, " "), last).tolist(),
            "position": positions,
            "level": levels.tolist(),
            "is_decision_maker": r_dm[o],
            "started_at": r_start[o],
            "left_at": nullable_days(r_left[o], r_left_valid[o]),
            "updated_at": ts_of(np.minimum(upd, end), rng),
        },
    )
    return table, ContactSlots(
        orig, repl.reshape(n, 3), left_or_never.reshape(n, 3), switch.reshape(n, 3)
    )


def _interactions(rng, plan: ClientPlan, managers: Managers, idx, client_ids, slots, counters):
    end = plan.end
    n = len(idx)
    start = np.maximum(plan.created[idx], plan.hist_start)
    until = np.minimum(plan.contact_until[idx], end)
    length = np.maximum(until - start, 0)
    count = rng.poisson(length / plan.contact_rate[idx])
    owner = np.repeat(np.arange(n), count)
    m = len(owner)
    day = start[owner] + (rng.random(m) * (length[owner] + 1)).astype(np.int64)
    day = np.minimum(day, until[owner])
    occurred = ts_of(day, rng, 8, 19)
    order = np.lexsort((occurred, owner))
    owner, day, occurred = owner[order], day[order], occurred[order]

    kind = rng.choice(len(INTERACTION_KINDS), m, p=[0.5, 0.1, 0.15, 0.1, 0.15])
    complaint = INTERACTION_KINDS.index("complaint")
    touch = INTERACTION_KINDS.index("touch")
    kind[(kind == complaint) & plan.planted[idx][owner]] = touch
    channel = rng.choice(len(CHANNELS), m, p=[0.35, 0.3, 0.1, 0.1, 0.15])

    # Our side: the account manager mostly, sometimes the team head or director.
    am = plan.account_manager[idx][owner]
    team = managers.team[am]
    u = rng.random(m)
    mgr = np.where(
        u < 0.8, am, np.where(u < 0.95, managers.team_head[team], managers.team_director[team])
    )
    mgr_level = managers.level[mgr]
    # The comb: director with director, head with head, specialist with specialist or head.
    c_level = np.where(mgr_level == "director", 0, np.where(mgr_level == "head", 1, 2))
    c_level = np.where((c_level == 2) & (rng.random(m) < 0.4), 1, c_level)
    use_repl = day >= slots.switch[owner, c_level]
    contact = np.where(use_repl, slots.repl[owner, c_level], slots.orig[owner, c_level])
    # Nobody at that level between a departure and the replacement's start: no contact.
    vacant = (day >= slots.left[owner, c_level]) & ~use_repl
    contact_valid = (rng.random(m) >= 0.05) & ~vacant

    # Satisfaction: mostly for feedback / service / complaints; complaints score lower.
    sat = rng.choice([1, 2, 3, 4, 5], m, p=[0.04, 0.08, 0.2, 0.4, 0.28])
    low = rng.choice([1, 2, 3], m, p=[0.4, 0.4, 0.2])
    sat = np.where(kind == complaint, low, sat)
    scored = np.isin(
        kind, [complaint, INTERACTION_KINDS.index("feedback"), INTERACTION_KINDS.index("service")]
    )
    sat_valid = np.where(scored, rng.random(m) >= 0.25, rng.random(m) >= 0.8)

    resolve_us = rng.integers(3600, 20 * 86400, m) * US_PER_SECOND
    resolved = occurred + resolve_us
    res_valid = (kind == complaint) & (rng.random(m) >= 0.1) & (resolved < (end + 1) * US_PER_DAY)
    numbers = counters.interaction + 1 + np.arange(m)
    counters.interaction += m
    return to_table(
        "crm",
        "interactions",
        {
            "interaction_id": ids("X", numbers, 9),
            "client_id": client_ids.take(pa.array(owner)),
            "contact_id": pc.if_else(
                pa.array(contact_valid), ids("P", contact, 8), pa.scalar(None, pa.string())
            ),
            "manager_id": managers.ids[mgr].tolist(),
            "occurred_at": occurred,
            "channel": np.array(CHANNELS)[channel].tolist(),
            "kind": np.array(INTERACTION_KINDS)[kind].tolist(),
            "satisfaction": pa.array(sat, pa.int64(), mask=~sat_valid),
            "resolved_at": nullable_ts(resolved, res_valid),
            "updated_at": np.where(res_valid, resolved, occurred),
        },
    )
