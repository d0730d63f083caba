"""The choice: candidates judged out of time, the chosen one calibrated, its flag levels,
and D's clients scored (docs/rules.md "Churn score"). The parts live beside it:
``settings`` (settings, result, horizon), ``features`` (the learned models' inputs),
``candidates`` (the scores and their fits), ``measures`` (AUC, Platt, levels) and
``drivers`` (the facts in the reasons).

Terms:

* **case**: a client on a past backtest date ``t`` whose horizon has passed by D
  (``t + H <= D``); **lost** when its next completed order is later than ``t + H`` (or
  none up to D). Only orders up to D are read: the label needs nothing after ``t + H``.
* **validation window**: the most recent passed dates (a third of them, at most 13); the
  candidates are fitted on the dates before it and judged there (ROC AUC). Strictly, the
  fit dates' horizons end before the window starts; a short history has no such dates, so
  then the fit uses every date before the window (their outcomes overlap it) and the
  report's ``why`` says so. The learned candidates are judged on clients they were not
  fitted on: each fixed half of the clients (:func:`client_halves`) is scored by models
  fitted on the other half.
* **choice**: the best AUC on the window; a learned candidate must beat recency's AUC by
  ``margin``, else the better simple score (recency or the cadence rule) stands. A chosen
  learned one whose refit on every passed date is not monotone in lateness is passed over:
  the same rule chooses among the rest.
* **recency mix**: a chosen learned model ranks D by its log-odds mixed with log recency
  (:func:`_recency_mix`: recency's weight fitted on the windows, at least
  ``drift_recency_weight`` where their lost share drifts); the report's columns
  ``recency_weight``, ``fitted_recency_weight`` and ``lost_share_drift`` publish it (NULL
  without a mix).
* **calibration**: Platt scaling of the chosen score (or its mix) on the window (a
  monotone map, so the ranking is kept); its error is measured crosswise (map fitted on
  half of the window's dates, judged on the other half).
* **flags**: churned from the lowest probability whose validated precision reaches
  ``churned_precision`` (among cases at or past ``churned_min_overdue_ratio`` of their
  interval); at risk from the lowest lower probability whose band is lost clearly more
  often than the not-churned are (halfway between their base rate and the churned target);
  else no band.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipelines.score.candidates import (
    _Blend,
    _Boosting,
    _Cadence,
    _Candidate,
    _fit,
    _Logistic,
    _LogisticRFM,
    _Recency,
    client_halves,
)
from pipelines.score.drivers import score_drivers
from pipelines.score.features import _check_frame
from pipelines.score.measures import (
    FlagLevel,
    Platt,
    RecencyMix,
    _cross_calibration_error,
    closest_level,
    lowest_band,
    lowest_level,
    quantile_map,
    roc_auc,
    weight_text,
)
from pipelines.score.settings import (
    CANDIDATES,
    LEARNED,
    SCORE_VERSION,
    SIMPLE,
    ScoreError,
    ScoreResult,
    ScoreSettings,
    _weights,
    derive_horizon,
    detect_drift,
)

#: the features that are sums of money (rounded to the cent before any fit)
MONEY_FEATURES = (
    "revenue_90d",
    "revenue_prior_90d",
    "revenue_365d",
    "revenue_to_date",
    "first_order_revenue",
)

#: why a chosen learned candidate was passed over (the report's ``why`` and ``notes``)
PASSED_OVER = "its refit on every passed date lowered the probability as lateness grows"


def _as_date(value: Any) -> date:
    return pd.Timestamp(value).date()


def _prepare(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"]).dt.date
    frame["next_order_date"] = pd.to_datetime(frame["next_order_date"]).dt.date
    frame["segment"] = frame["segment"].astype("string")
    # money to the cent: the features' revenue sums are doubles whose last bits depend on
    # the engine's summation order (Spark and DuckDB differ by ~1e-10 on 132342.37), and a
    # boosted fit can split on that noise (the Spark comparison test saw one window's AUC
    # move by 0.0001)
    for column in MONEY_FEATURES:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round(2)
    # a fixed order: DuckDB returns rows in no set order, and the sample of past cases and
    # the fits depend on it (the benchmark's floor and the run disagreed on 13 win-back
    # candidates at 20,000 clients before this)
    return frame.sort_values(["as_of_date", "client_id"], kind="stable").reset_index(drop=True)


def _report_row(**values: Any) -> dict[str, Any]:
    return values


def score_clients(frame: pd.DataFrame, as_of: date, settings: ScoreSettings) -> ScoreResult:
    """Fit, judge, choose, calibrate and score D's clients (rows with as_of_date = D).

    One thread for the learned models: on the shared 2-core machine OpenMP's threads
    made a 40,000-case gradient boosting fit 12x slower (14 s vs 1.1 s), not faster.
    """
    # imported before the limit: threadpoolctl limits only the thread pools (OpenMP,
    # BLAS) already loaded, and scikit-learn loads OpenMP with these modules
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _score_clients(frame, as_of, settings)


def _score_clients(frame: pd.DataFrame, as_of: date, settings: ScoreSettings) -> ScoreResult:
    settings.validate()
    _check_frame(frame)
    frame = _prepare(frame)
    if (frame["as_of_date"] > as_of).any():
        raise ScoreError(f"the features frame holds as-of dates after D = {as_of}")
    today = frame[frame["as_of_date"] == as_of].reset_index(drop=True)
    horizon, horizon_source = derive_horizon(frame, as_of, settings)
    past = frame[frame["as_of_date"] + timedelta(days=horizon) <= as_of]
    past = past.reset_index(drop=True)
    if len(past) > settings.max_cases:
        past = past.sample(n=settings.max_cases, random_state=settings.seed)
        past = past.sort_values(["as_of_date", "client_id"]).reset_index(drop=True)
    end = past["as_of_date"].map(lambda t: t + timedelta(days=horizon))
    nxt = past["next_order_date"]
    lost = (
        np.array(
            [(n is None or pd.isna(n) or n > e) for n, e in zip(nxt, end, strict=True)], dtype=bool
        )
        if len(past)
        else np.zeros(0, dtype=bool)
    )
    segments = sorted(str(s) for s in frame["segment"].dropna().unique())
    notes: list[str] = []

    candidates: dict[str, _Candidate] = {"recency": _Recency(), "cadence_rule": _Cadence()}
    halves = client_halves(past["client_id"]) if len(past) else np.zeros(0, dtype=int)
    windows, window_note = _plan_windows(past, lost, halves, horizon, settings)
    usable = bool(windows)
    if usable:
        candidates["logistic"] = _Logistic(segments, settings.seed)
        candidates["logistic_rfm"] = _LogisticRFM(segments, settings.seed)
        candidates["gradient_boosting"] = _Boosting(segments, settings.seed)
        candidates["blend"] = _Blend(segments, settings.seed)
        if window_note:
            notes.append(window_note)
        # the refit on every passed date weights recent cases only where the lost share
        # drifts (each window's fit decides the same on its own dates)
        notes.append(detect_drift(past, lost, settings).describe())
    for win in windows:
        _judge(win, candidates, past, lost, halves, segments, settings, notes)
    newest = windows[0] if windows else None
    window = newest.label if newest else "none"
    # the choice rests on each candidate's mean AUC over the windows (dropped in any: out)
    aucs: dict[str, float | None] = {}
    for name in candidates if usable else []:
        per_window = [w.aucs.get(name) for w in windows]
        aucs[name] = None if any(a is None for a in per_window) else float(np.mean(per_window))
    # calibration and the flag levels rest on every window's cases together, each scored
    # out of time by its own window's models: the newest window alone (a fifth of the dates
    # with 3 windows) held too few cases for the churned level on Online Retail 2011-09-09
    # (no level reached 0.8 precision on 20+ cases; pooled, 50 clients churned at D, 0.76 of
    # them lost within 91 days)
    val_mask = np.zeros(len(past), dtype=bool)
    for win in windows:
        val_mask |= win.val_mask
    val_scores: dict[str, np.ndarray] = {}
    for name in candidates if usable else []:
        if aucs.get(name) is None:
            continue
        pooled = np.full(len(past), np.nan)
        for win in windows:
            pooled[win.val_mask] = win.scores[name]
        val_scores[name] = pooled[val_mask]
    val_frame = past[val_mask]
    y_val = lost[val_mask]
    over = f"mean AUC over {len(windows)} validation windows" if len(windows) > 1 else "AUC"

    refitted: dict[str, _Candidate] = {}
    raw_today: dict[str, np.ndarray] = {}
    past_weights: list[np.ndarray] = []

    def refit_raw_today(name: str) -> np.ndarray:
        # once per refitted candidate (the chosen one, `kam evaluate`'s columns and the
        # blend's parts read the same scores); the blend from its parts' scores
        if name not in raw_today:
            raw_today[name] = (
                _Blend.combine([refit_raw_today("logistic"), refit_raw_today("gradient_boosting")])
                if name == "blend"
                else refit(name).raw(today)
            )
        return raw_today[name]

    def refit(name: str) -> _Candidate:
        # every learned candidate refitted once on all passed dates; the blend of the
        # refitted parts
        if name not in refitted:
            if name == "blend":
                refitted[name] = _Blend(segments, settings.seed).use(
                    [refit("logistic"), refit("gradient_boosting")]
                )
            else:
                if not past_weights:  # the same for both learned parts
                    past_weights.append(_weights(past, lost, settings))
                refitted[name] = _fit(name, segments, settings, past, lost, past_weights[0])
        return refitted[name]

    # the choice
    passed_over: list[str] = []
    if not usable:
        chosen = "recency"
        if not len(past):
            why_chosen = (
                f"fallback: no past date's {horizon}-day horizon has passed by D, nothing to "
                "fit or judge on; recency ranks, the flags use the cadence rule"
            )
        else:
            why_chosen = (
                f"fallback: too few past cases (need {settings.min_cases} lost and "
                f"{settings.min_cases} kept in both the fit and the validation dates; "
                f"{len(past)} cases with {int(lost.sum())} lost); recency ranks"
            )
        notes.append(why_chosen)
    else:
        chosen, why_chosen = _choose(aucs, settings, over)
        # the windows' fits were checked, the refit that ranks D must be too: when the
        # chosen one's refit lowers the probability as lateness grows, the same rule
        # chooses among the rest (the blend's refit fails with the logistic's)
        while chosen in LEARNED and not getattr(refit(chosen), "monotone", True):
            passed_over.append(chosen)
            rest = {n: None if n in passed_over else a for n, a in aucs.items()}
            chosen, why_chosen = _choose(rest, settings, over)
        if passed_over:
            why_chosen += f"; passed over {', '.join(passed_over)}: {PASSED_OVER}"
            notes.append(f"{', '.join(passed_over)}: {PASSED_OVER}; {chosen} published")
        if window_note:
            why_chosen += f"; {window_note}"

    # calibration on the window, thresholds, refit on all passed dates, scoring of D
    cand = candidates[chosen]
    churned_level = at_risk_level = None
    churned_prec = at_risk_prec = None
    churned_cases = at_risk_cases = 0
    cal_error = None
    flags_from = "score"
    candidate_today: dict[str, np.ndarray] = {}
    mix: RecencyMix | None = None
    mix_drift: bool | None = None
    if usable or (len(past) and lost.min() != lost.max()):
        cal_frame = val_frame if usable else past
        y_cal = y_val if usable else lost
        raw_cal = val_scores[chosen] if usable else cand.raw(past)
        z_cal = cand.link(raw_cal)
        if usable and chosen in LEARNED:
            mix, mix_drift, mix_note = _recency_mix(z_cal, cal_frame, y_cal, settings)
            notes.append(mix_note)
            why_chosen += f"; {mix_note}"
        s_cal = mix(z_cal, _recency(cal_frame)) if mix else z_cal
        platt = Platt.fit(s_cal, y_cal)
        p_cal = platt(s_cal)
        cal_error = _cross_calibration_error(s_cal, y_cal, cal_frame["as_of_date"])
        if usable:
            ratio = cal_frame["overdue_ratio"].to_numpy(dtype=float)
            # never churned below an even chance, whatever the precision of the cases above
            # (the average precision from a level can pass the target while the clients at the
            # level itself mostly come back: the demo's first levels sat at p = 0.02)
            churn_ok = (ratio >= settings.churned_min_overdue_ratio) & (p_cal >= 0.5)
            cal_clients = cal_frame["client_id"].to_numpy()
            found = lowest_level(
                p_cal,
                y_cal,
                churn_ok,
                settings.churned_precision,
                settings.min_flag_cases,
                cal_clients,
            )
            if found:
                churned_level, churned_prec, churned_cases = found.level, found.lower, found.cases
                churned = churn_ok & (p_cal >= churned_level)
                notes.append(_level_note("churned", found, horizon))
            else:
                churned = np.zeros(len(p_cal), dtype=bool)
                closest = _best_note(p_cal, y_cal, churn_ok, cal_clients, settings.min_flag_cases)
                notes.append(
                    f"no churned flag: no probability level's validated precision reaches "
                    f"{settings.churned_precision:.2f} beyond doubt (the lower end of its "
                    f"one-sided 95 % range, each past client counted once, "
                    f"{settings.min_flag_cases}+ cases){closest}: nobody is flagged churned "
                    "by the score"
                )
            rest = ~churned
            base_rest = float(y_cal[rest].mean()) if rest.any() else 0.0
            target_at_risk = base_rest + (settings.churned_precision - base_rest) / 2
            # at risk only above the not-churned cases' lost share (more likely lost than them)
            at_risk_ok = rest & (ratio > settings.at_risk_min_overdue_ratio) & (p_cal > base_rest)
            # two separate conditions (docs/rules.md "Flags"): the band's validated precision
            # reaches halfway to the churned target (magnitude) and the lower end of its 95 %
            # range is above the not-churned cases' lost share (beyond doubt); churn-score-7
            # asked the lower end to reach halfway, which left no band on Online Retail
            # 2011-09-09 (churn-score-6: 799 clients, 0.66 lost within 91 days vs 0.43)
            found = lowest_band(
                p_cal,
                y_cal,
                at_risk_ok,
                target_at_risk,
                base_rest,
                settings.min_flag_cases,
                cal_clients,
            )
            if found and (churned_level is None or found.level < churned_level):
                at_risk_level, at_risk_prec, at_risk_cases = found.level, found.lower, found.cases
                notes.append(_level_note("at-risk", found, horizon))
            else:
                notes.append(
                    f"no at-risk band: no lower level's validated precision reaches "
                    f"{target_at_risk:.2f} (halfway from the not-churned cases' lost share "
                    f"{base_rest:.2f} to {settings.churned_precision:.2f}) with the lower end "
                    f"of its one-sided 95 % range (each past client counted once) above "
                    f"{base_rest:.2f}, on {settings.min_flag_cases}+ cases: nobody is flagged "
                    "at risk by the score"
                )
        else:
            # too few past cases to judge a level out of time: the probability is given
            # (fitted on every past case), the flags are the cadence rule's (segment policy
            # or the default factors), as docs/rules.md says for too few cases; a level
            # chosen in-sample on a handful of clients flagged a monthly key client 2.3x
            # late as churned (tests/dbt/test_dbt_actions.py, risk1)
            flags_from = "cadence_rule"
            notes.append(
                "too few past cases to validate flag levels out of time: the cadence rule "
                "(segment policy or default factors) sets the flags"
            )
        if usable and chosen in LEARNED:
            # the refitted model ranks D; its scores are put on the judged models' scale
            # (same quantile on the window), so the window's calibration and flag levels
            # mean the same for it: on Online Retail 2011-06-09 the refitted blend's raw
            # scale was narrower and no client of D reached the churned level
            cand = refit(chosen)
            z_today = quantile_map(
                cand.link(refit_raw_today(chosen)), cand.link(cand.raw(val_frame)), z_cal
            )
        else:
            z_today = cand.link(cand.raw(today)) if len(today) else np.zeros(0)
        if mix and len(today):
            z_today = mix(z_today, _recency(today))
        p_today = platt(z_today) if len(today) else np.zeros(0)
        if usable and len(today):
            # every candidate refitted the same way, scored on D: `kam evaluate` ranks them
            # side by side once D's horizon has passed
            for name in candidates:
                if aucs.get(name) is not None:
                    candidate_today[name] = refit_raw_today(name)
    else:
        flags_from = "cadence_rule"
        platt = None
        p_today = np.full(len(today), np.nan)

    report: list[dict[str, Any]] = []
    for win in windows:  # newest window first
        y_win = lost[win.val_mask]
        for name in candidates:
            row = _candidate_row(
                name,
                win.label,
                y_win,
                win.scores.get(name),
                win.aucs.get(name),
                chosen,
                why_chosen,
                float(churned.mean()) if len(churned) else 0.0,
                win.fit_how,
            )
            if name in passed_over:
                row["why"] = f"passed over: {PASSED_OVER}; {win.fit_how}"
            row["mean_auc"] = aucs.get(name)
            report.append(row)
    if not usable:
        report.append(
            _report_row(
                candidate="recency",
                validation_window=window,
                cases=int(len(past)),
                lost=int(lost.sum()),
                base_rate=float(lost.mean()) if len(past) else None,
                auc=roc_auc(past["days_since_last_order"].to_numpy(float), lost)
                if len(past)
                else None,
                flag_share=None,
                precision_at_flag_share=None,
                recall_at_flag_share=None,
                calibration_error=None,
                is_chosen=True,
                why=why_chosen,
            )
        )
    for row in report:
        # calibration and the flag levels rest on the windows together: once, on the first
        if row["is_chosen"] and row["validation_window"] == report[0]["validation_window"]:
            row["calibration_error"] = cal_error

    drivers = (
        score_drivers(cand, today, past, lost, segments, mix=mix, slope=platt.a)
        if platt is not None
        else []
    )
    ratio_today = today["overdue_ratio"].to_numpy(dtype=float)
    if flags_from == "score":
        churned_today = (
            (p_today >= churned_level) & (ratio_today >= settings.churned_min_overdue_ratio)
            if churned_level is not None
            else np.zeros(len(today), dtype=bool)
        )
        at_risk_today = (
            (p_today >= at_risk_level)
            & ~churned_today
            & (ratio_today > settings.at_risk_min_overdue_ratio)
            if at_risk_level is not None
            else np.zeros(len(today), dtype=bool)
        )
    else:
        churned_today = at_risk_today = np.full(len(today), np.nan)
    clients = pd.DataFrame(
        {
            "client_id": today["client_id"].astype("string"),
            "churn_probability": p_today,
            "score_is_churned": churned_today,
            "score_is_at_risk": at_risk_today,
        }
    )
    clients["score_drivers"] = pd.Series(drivers or [None] * len(today), dtype="string")
    for name in CANDIDATES:
        clients[f"candidate_{name}"] = candidate_today.get(name, np.full(len(today), np.nan))
    clients["flags_from"] = flags_from
    clients["chosen_candidate"] = chosen
    clients["churned_level"] = churned_level
    clients["churned_precision"] = churned_prec
    clients["churned_level_cases"] = churned_cases
    clients["at_risk_level"] = at_risk_level
    clients["at_risk_precision"] = at_risk_prec
    clients["at_risk_level_cases"] = at_risk_cases
    clients["horizon_days"] = horizon
    report_frame = pd.DataFrame(report)
    report_frame["horizon_days"] = horizon
    report_frame["horizon_source"] = horizon_source
    report_frame["score_version"] = SCORE_VERSION
    report_frame["churned_level"] = churned_level
    report_frame["churned_precision"] = churned_prec
    report_frame["at_risk_level"] = at_risk_level
    report_frame["at_risk_precision"] = at_risk_prec
    # the mix behind churn_probability, for readers (`kam evaluate`) that must not parse why
    report_frame["recency_weight"] = mix.w if mix else None
    report_frame["fitted_recency_weight"] = mix.fitted_w if mix else None
    report_frame["lost_share_drift"] = mix_drift
    report_frame["notes"] = "; ".join(notes) if notes else None
    return ScoreResult(
        clients=clients,
        report=report_frame,
        chosen=chosen,
        horizon_days=horizon,
        horizon_source=horizon_source,
        churned_level=churned_level,
        at_risk_level=at_risk_level,
        notes=notes,
    )


def _level_note(flag: str, found: FlagLevel, horizon: int) -> str:
    """What a flag's level rests on, in words (the report's notes)."""
    return (
        f"{flag} from probability {found.level:.2f}: of the validation cases at or above it "
        f"{found.precision:.2f} did not order within {horizon} days ({found.cases} cases, "
        f"{found.clients} distinct clients); published precision {found.lower:.2f}, the lower "
        "end of its one-sided 95 % range (Wilson, each client counted once)"
    )


def _best_note(
    p: np.ndarray, lost: np.ndarray, eligible: np.ndarray, clients: np.ndarray, min_cases: int
) -> str:
    """The level that came closest to the churned target, in words (or nothing)."""
    best = closest_level(p, lost, eligible, min_cases, clients)
    if best is None:
        return ""
    return (
        f"; closest: probability {best.level:.2f}, {best.precision:.2f} on {best.cases} cases "
        f"of {best.clients} clients, lower end {best.lower:.2f}"
    )


def _recency(frame: pd.DataFrame) -> np.ndarray:
    return frame["days_since_last_order"].to_numpy(dtype=float)


def _recency_mix(
    z: np.ndarray, cases: pd.DataFrame, lost: np.ndarray, settings: ScoreSettings
) -> tuple[RecencyMix, bool, str]:
    """The mix of the chosen learned model's log-odds with log recency that D is ranked by,
    whether the lost share drifts across the validation dates, and a note saying why
    (docs/rules.md "Churn score", "Recency mix").

    The weight of recency is fitted on the validation cases (scored out of time); where the
    lost share drifts across the validation dates, it is at least
    ``settings.drift_recency_weight``. On a generated B2B reseller export (12 seeds) the
    learned edge lay between one-order and repeat buyers, the repeat buyers' lost share kept
    rising after the windows (0.19 / 0.29 / 0.37 on the windows, 0.50 at D), and the learned
    model alone ranked D below recency in 6 of 12 runs (by up to 0.035); the mix in none.
    On Online Retail the fitted weight is 0 (recency adds nothing to the learned model on
    the windows, no drift there): the same ranking as the learned model alone.
    """
    drift = detect_drift(cases, lost, settings)
    floor = settings.drift_recency_weight if drift.drifted else 0.0
    mix = RecencyMix.fit(z, _recency(cases), lost, floor)
    how = (
        f"the lost share of {drift.group} drifted across the validation dates "
        f"({drift.older_share:.2f} -> {drift.newer_share:.2f}, z {drift.z:.1f}): at least "
        f"{weight_text(floor)}"
        if drift.drifted
        else "no drift across the validation dates"
    )
    note = (
        f"published: the learned log-odds mixed with log recency, recency's weight "
        f"{weight_text(mix.w)} (fitted on the validation cases {weight_text(mix.fitted_w)}; "
        f"{how})"
    )
    return mix, drift.drifted, note


def _choose(aucs: dict[str, float | None], settings: ScoreSettings, over: str) -> tuple[str, str]:
    """The chosen candidate and why, from each candidate's AUC out of time (the mean over
    the validation windows; None: dropped). The best learned one must beat recency by the
    margin, else the better simple score stands; within the margin of the best learned
    one, the blend is preferred."""
    best = max((n for n in aucs if aucs[n] is not None), key=lambda n: aucs[n])
    base = aucs["recency"] or 0.5
    learned = [n for n in LEARNED if aucs.get(n) is not None]
    best_learned = max(learned, key=lambda n: aucs[n]) if learned else None
    if best in LEARNED and aucs[best] >= base + settings.margin:
        chosen = best
        why_chosen = (
            f"best out of time ({over} {aucs[best]:.3f}), beats recency's by "
            f"{aucs[best] - base:+.3f} (margin {settings.margin:.3f})"
        )
        blend = aucs.get("blend")
        if best != "blend" and blend is not None and blend >= aucs[best] - settings.margin:
            # within the margin of the best, the blend is preferred: the window's cases
            # lie in the range of the fit's, D's clients often beyond it (silent longer
            # than any past case), where the logistic half keeps ranking and boosting
            # goes flat (Online Retail 2011-06-09: window 0.757 vs 0.749, at D 0.726 vs
            # 0.737)
            chosen = "blend"
            why_chosen = (
                f"within the margin {settings.margin:.3f} of the best ({best} "
                f"{aucs[best]:.3f}, {over}), the blend is preferred: it keeps ranking "
                f"beyond the past cases' range; beats recency's by {blend - base:+.3f}"
            )
    else:
        simple_best = max(SIMPLE, key=lambda n: aucs[n] or 0)
        chosen = simple_best
        if best_learned is not None:
            why_chosen = (
                f"no learned model beats recency by the margin {settings.margin:.3f} "
                f"({over}; best: {best_learned} {aucs[best_learned] - base:+.3f}); the "
                "simple score stands"
            )
        else:
            why_chosen = f"the best simple score out of time ({over})"
    return chosen, why_chosen


@dataclass
class _Window:
    """One validation window: its dates' cases, the cases its candidates are fitted on, and
    what they scored there."""

    label: str
    val_mask: np.ndarray
    fit_mask: np.ndarray
    fit_how: str
    grouped: bool
    aucs: dict[str, float | None] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def _enough(y: np.ndarray, settings: ScoreSettings) -> bool:
    return int(y.sum()) >= settings.min_cases and int((~y).sum()) >= settings.min_cases


def _plan_windows(
    past: pd.DataFrame, lost: np.ndarray, halves: np.ndarray, horizon: int, settings: ScoreSettings
) -> tuple[list[_Window], str | None]:
    """The validation windows, newest first, and a note when fewer than asked were possible.

    For k windows (``settings.windows``, then fewer): the passed dates are cut into k + 2
    parts; the newest k parts (at most 13 dates each) are the windows, each judged by models
    fitted on the dates whose horizon ended before it (if those have too few cases, every
    date before it: their outcomes overlap it, and ``fit_how`` says so). k windows are used
    when every window and every fit has ``min_cases`` lost and kept; one window is the old
    single-window choice (a third of the dates). None possible: no window (fallback).
    """
    dates = sorted(past["as_of_date"].unique())
    t = past["as_of_date"]
    # each case's horizon end, once (a Python date per case: 0.3 s per pass at 100,000)
    ends = t.map(lambda d: d + timedelta(days=horizon))
    for k in range(settings.windows, 0, -1):
        size = max(1, min(13, len(dates) // (k + 2)))
        if not dates or k * size >= len(dates):
            continue
        windows: list[_Window] = []
        for i in range(k):
            window_dates = dates[len(dates) - (i + 1) * size : len(dates) - i * size]
            first, last = window_dates[0], window_dates[-1]
            val_mask = ((t >= first) & (t <= last)).to_numpy()
            strict = (ends < first).to_numpy()
            if _enough(lost[strict], settings):
                fit_mask, fit_how = strict, "fitted on dates whose horizon ended before the window"
            else:
                fit_mask = (t < first).to_numpy()
                fit_how = (
                    "fitted on the dates before the window (their outcomes overlap it: the "
                    "history is too short for horizons that end before it)"
                )
            if not (_enough(lost[val_mask], settings) and _enough(lost[fit_mask], settings)):
                break
            grouped = all(_enough(lost[fit_mask & (halves == g)], settings) for g in (0, 1))
            fit_how += (
                "; judged on the other half of the clients (each half's window cases scored "
                "by the models fitted on the other half)"
                if grouped
                else "; judged on the same clients (too few cases to cut them in halves)"
            )
            label = f"{first.isoformat()} .. {last.isoformat()}"
            windows.append(_Window(label, val_mask, fit_mask, fit_how, grouped))
        else:
            note = None
            if k < settings.windows:
                note = (
                    f"fallback: {k} validation window{'s' if k > 1 else ''} instead of "
                    f"{settings.windows}: too few past cases for more (each window and its "
                    f"fit need {settings.min_cases} lost and {settings.min_cases} kept)"
                )
            return windows, note
    return [], None


def _judge(
    win: _Window,
    candidates: dict[str, _Candidate],
    past: pd.DataFrame,
    lost: np.ndarray,
    halves: np.ndarray,
    segments: list[str],
    settings: ScoreSettings,
    notes: list[str],
) -> None:
    """Every candidate's scores and AUC on one window (the learned ones fitted on the
    window's fit cases, judged on the half of the clients they were not fitted on).

    The same client's cases a week apart share their outcome and most of their features
    (first-order value, tenure), so a model judged on its own fit clients is rewarded for
    recognising them: on Online Retail 2011-06-09 the boosted model's window AUC was 0.757
    on the same clients, 0.682 on the other half, and 0.726 at D; the choice and the flag
    levels rest on the windows, so they must not be fooled.
    """
    val_frame = past[win.val_mask]
    y_val = lost[win.val_mask]
    if win.grouped:
        folds = [(win.fit_mask & (halves == g), halves[win.val_mask] != g) for g in (0, 1)]
    else:
        folds = [(win.fit_mask, np.ones(int(win.val_mask.sum()), dtype=bool))]
    fold_models: dict[str, list[_Candidate]] = {}
    fold_scores: dict[str, list[np.ndarray]] = {}
    # each fold's fit cases and their weights, once for both learned parts (the weights
    # test the lost share for drift: at 20,000 clients 15 calls took 0.77 CPU s, now 7)
    fold_cases: list[tuple[pd.DataFrame, np.ndarray, np.ndarray]] = []
    for train, _ in folds:
        cases, y = past[train], lost[train]
        fold_cases.append((cases, y, _weights(cases, y, settings)))
    for name, cand in candidates.items():
        if name in SIMPLE:
            win.scores[name] = cand.raw(val_frame)
            win.aucs[name] = roc_auc(win.scores[name], y_val)
            continue
        scores = np.full(len(val_frame), np.nan)
        models: list[_Candidate] = []
        fold_scores[name] = []
        for i, (_, judged) in enumerate(folds):
            if name == "blend":  # the blend of this fold's two parts, fitted and scored above
                parts = ("logistic", "gradient_boosting")
                model: _Candidate = _Blend(segments, settings.seed).use(
                    [fold_models[part][i] for part in parts]
                )
                raw = _Blend.combine([fold_scores[part][i] for part in parts])
            else:
                model = _fit(name, segments, settings, *fold_cases[i])
                raw = model.raw(val_frame[judged])
            models.append(model)
            fold_scores[name].append(raw)
            scores[judged] = raw
        fold_models[name] = models
        if not all(getattr(m, "monotone", True) for m in models):
            notes.append(
                f"{name}: its fit for {win.label} lowered the probability as lateness grows; "
                "dropped"
            )
            win.aucs[name] = None
            continue
        win.scores[name] = scores
        win.aucs[name] = roc_auc(scores, y_val)


def _candidate_row(
    name: str,
    window: str,
    y_val: np.ndarray,
    scores: np.ndarray | None,
    auc: float | None,
    chosen: str,
    why_chosen: str,
    share: float,
    fit_how: str,
) -> dict[str, Any]:
    """A report row: AUC and precision / recall when the candidate flags as many of the
    window's cases as the chosen score's churned flag does on the windows together (its share)."""
    precision = recall = None
    if scores is not None and share > 0:
        k = max(1, int(round(share * len(scores))))
        top = np.argsort(-scores, kind="stable")[:k]
        hits = int(y_val[top].sum())
        precision = hits / k
        recall = hits / int(y_val.sum()) if y_val.sum() else None
    if name == chosen:
        why = why_chosen
    elif auc is None:
        why = "dropped (its fit lowered the probability as lateness grows)"
    else:
        why = "not chosen"
    return _report_row(
        candidate=name,
        validation_window=window,
        cases=int(len(y_val)),
        lost=int(y_val.sum()),
        base_rate=float(y_val.mean()) if len(y_val) else None,
        auc=auc,
        flag_share=share,
        precision_at_flag_share=precision,
        recall_at_flag_share=recall,
        calibration_error=None,
        is_chosen=name == chosen,
        why=f"{why}; {fit_how}",
    )
