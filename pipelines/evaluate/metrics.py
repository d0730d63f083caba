"""Plain metrics of a backtest: rank-based ROC AUC, precision / recall of a flag and the
precision of a ranking's top k at a recall.

No dependency beyond the standard library: the case counts are small (thousands of
clients) and the definitions must be readable next to the hand-computed unit tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks of ``values`` in ascending order; tied values share their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        mean_rank = (start + end) / 2 + 1  # positions start..end hold ranks start+1..end+1
        for position in range(start, end + 1):
            ranks[order[position]] = mean_rank
        start = end + 1
    return ranks


def roc_auc(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """ROC AUC of ``scores`` for ``positives`` (a higher score should mean positive).

    Mann-Whitney: the probability that a random positive scores above a random negative,
    a tie counting one half; computed from average ranks, so ties are exact. ``None``
    when either class is empty (the AUC is undefined).
    """
    if len(scores) != len(positives):
        raise ValueError(f"{len(scores)} scores for {len(positives)} outcomes")
    n_pos = sum(1 for p in positives if p)
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(scores)
    rank_sum = sum(r for r, p in zip(ranks, positives, strict=True) if p)
    u_statistic = rank_sum - n_pos * (n_pos + 1) / 2
    return u_statistic / (n_pos * n_neg)


@dataclass(frozen=True)
class FlagScore:
    """How a flag fared against the outcome: counts, precision and recall.

    ``judged`` is the number of cases the flag had a value for (NULL = not judged is
    neither flagged nor unflagged); recall is over the positives among the judged cases.
    """

    judged: int
    flagged: int
    hits: int  # flagged and positive
    positives: int  # positive among the judged

    @property
    def precision(self) -> float | None:
        return self.hits / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.hits / self.positives if self.positives else None


def flag_score(flags: Sequence[bool | None], positives: Sequence[bool]) -> FlagScore:
    """Counts of a flag against the outcome; ``None`` flags (not judged) are left out."""
    if len(flags) != len(positives):
        raise ValueError(f"{len(flags)} flags for {len(positives)} outcomes")
    judged = flagged = hits = pos = 0
    for flag, positive in zip(flags, positives, strict=True):
        if flag is None:
            continue
        judged += 1
        pos += bool(positive)
        if flag:
            flagged += 1
            hits += bool(positive)
    return FlagScore(judged=judged, flagged=flagged, hits=hits, positives=pos)


def top_at_recall(
    scores: Sequence[float], positives: Sequence[bool], recall: float = 0.5
) -> FlagScore | None:
    """The top of a ranking (highest score first) as a flag: the smallest top k whose
    recall reaches ``recall``, plus every case tied with the k-th score (the order inside
    a tie is arbitrary, so a cut through it is not; ties at the cut are all included).
    Its precision is "precision at recall 0.50" of issue 20's target. ``None`` when
    there is no positive (no recall can be reached)."""
    if len(scores) != len(positives):
        raise ValueError(f"{len(scores)} scores for {len(positives)} outcomes")
    n_pos = sum(1 for p in positives if p)
    if n_pos == 0:
        return None
    ranked = sorted(zip(scores, positives, strict=True), key=lambda pair: -pair[0])
    taken = hits = 0
    while taken < len(ranked):
        score = ranked[taken][0]
        while taken < len(ranked) and ranked[taken][0] == score:  # the whole tie
            hits += bool(ranked[taken][1])
            taken += 1
        if hits >= recall * n_pos:
            break
    return FlagScore(judged=len(ranked), flagged=taken, hits=hits, positives=n_pos)
