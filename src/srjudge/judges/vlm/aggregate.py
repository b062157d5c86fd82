"""Turning pairwise outcomes into a ranking: Bradley-Terry strengths or Copeland scores.

Outcomes are (i, j, w) with w = 1 when i beat j, 0 when j beat i and 0.5 for a tie.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

Outcome = tuple[int, int, float]


def copeland(n: int, outcomes: Sequence[Outcome]) -> list[float]:
    """Fraction of its compared opponents each item beat (pairwise majority; a split counts half)."""
    tally: dict[tuple[int, int], float] = {}
    counts: dict[tuple[int, int], int] = {}
    for i, j, w in outcomes:
        a, b, win = (i, j, w) if i < j else (j, i, 1.0 - w)
        tally[(a, b)] = tally.get((a, b), 0.0) + win
        counts[(a, b)] = counts.get((a, b), 0) + 1
    points = [0.0] * n
    opponents = [0] * n
    for (a, b), total in tally.items():
        share = total / counts[(a, b)]
        result = 1.0 if share > 0.5 else 0.0 if share < 0.5 else 0.5
        points[a] += result
        points[b] += 1.0 - result
        opponents[a] += 1
        opponents[b] += 1
    return [p / o if o else 0.5 for p, o in zip(points, opponents, strict=True)]


def bradley_terry(
    n: int, outcomes: Sequence[Outcome], *, iterations: int = 500, prior: float = 0.5
) -> list[float]:
    """Bradley-Terry strengths by the MM algorithm (Hunter 2004), normalised to sum to n.

    ``prior`` adds that many virtual ties of each item against a reference of strength 1, so
    items that never lose (or never win) keep finite strengths.
    """
    wins = [prior] * n
    games: dict[tuple[int, int], float] = {}
    for i, j, w in outcomes:
        wins[i] += w
        wins[j] += 1.0 - w
        key = (min(i, j), max(i, j))
        games[key] = games.get(key, 0.0) + 1.0
    strength = [1.0] * n
    for _ in range(iterations):
        new = []
        for i in range(n):
            denom = 2.0 * prior / (strength[i] + 1.0)
            for (a, b), g in games.items():
                if a == i:
                    denom += g / (strength[i] + strength[b])
                elif b == i:
                    denom += g / (strength[i] + strength[a])
            new.append(wins[i] / denom if denom > 0 else strength[i])
        scale = n / sum(new)
        new = [s * scale for s in new]
        if max(abs(a - b) for a, b in zip(new, strength, strict=True)) < 1e-10:
            strength = new
            break
        strength = new
    return strength


def strength_to_score(strengths: Sequence[float]) -> list[float]:
    """Win probability (0-100) of each item against an average item of strength 1."""
    return [100.0 * s / (s + 1.0) for s in strengths]


def tournament_pairs(n: int, budget_pairs: int, *, seed: int = 0) -> list[tuple[int, int]]:
    """All pairs when the budget allows; otherwise a seeded selection that covers every item evenly."""
    everything = list(itertools.combinations(range(n), 2))
    if budget_pairs >= len(everything):
        return everything
    if budget_pairs < math.ceil(n / 2):
        raise ValueError(f"a budget of {budget_pairs} pairs cannot compare each of {n} candidates once")
    rng = random.Random(seed)
    rng.shuffle(everything)
    chosen: list[tuple[int, int]] = []
    degree = [0] * n
    # Greedy: prefer pairs whose items have been compared least, so coverage stays even.
    while len(chosen) < budget_pairs:
        everything.sort(key=lambda p: (degree[p[0]] + degree[p[1]], max(degree[p[0]], degree[p[1]])))
        pair = everything.pop(0)
        chosen.append(pair)
        degree[pair[0]] += 1
        degree[pair[1]] += 1
    return chosen
