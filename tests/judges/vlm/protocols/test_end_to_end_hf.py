"""Every VLM protocol end to end through the local hf backend on a tiny random-weight Qwen2-VL.

Random weights give garbage text, so these tests assert types, probability sums, abstention with
a reason where JSON is required, cache behaviour and the logit lens, not the answers' content.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from srjudge.judges import create_judge
from srjudge.judges.vlm import VLMJudge
from srjudge.judges.vlm.parsing import LEVELS


def _images(n: int, size: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((size, size, 3)).astype(np.float32) for _ in range(n)]


def _judge(tiny_vlm: Path, tmp_path: Path, **options: str) -> VLMJudge:
    spec = f"vlm:hf,model={tiny_vlm},cache={tmp_path / 'cache.sqlite'}" + "".join(
        f",{k}={v}" for k, v in options.items()
    )
    judge = create_judge(spec)
    assert isinstance(judge, VLMJudge)
    return judge


def test_level_scores_are_expectations_over_the_level_words(tiny_vlm: Path, tmp_path: Path) -> None:
    judge = _judge(tiny_vlm, tmp_path)
    verdicts = judge.score_many(_images(3))
    for v in verdicts:
        probs = [v.components[f"p_{w}"] for w in LEVELS]
        assert sum(probs) == pytest.approx(1.0) and all(0 <= p <= 1 for p in probs)
        assert 1.0 <= v.raw <= 5.0 and v.score == pytest.approx((v.raw - 1) * 25)
        assert v.tags[0] in LEVELS and "level-token probabilities" in v.rationale
        json.dumps(v.to_dict())
    assert judge.stats.calls == 3
    again = _judge(tiny_vlm, tmp_path)
    assert [v.score for v in again.score_many(_images(3))] == [v.score for v in verdicts]
    assert again.stats.calls == 0 and again.stats.cache_hits == 3
    ranking = judge.rank(_images(3))
    assert sorted(ranking.order()) == [0, 1, 2]


@pytest.mark.parametrize("protocol", ["audit", "readout", "perceive-infer"])
def test_json_protocols_abstain_on_garbage(tiny_vlm: Path, tmp_path: Path, protocol: str) -> None:
    # Seeded random weights write no valid JSON: after the retry the verdict abstains and says why.
    judge = _judge(tiny_vlm, tmp_path, protocol=protocol, retries="1")
    verdict = judge.score(_images(1)[0])
    assert verdict.abstained and verdict.score is None
    assert "2 attempt(s) failed" in (verdict.abstain_reason or "")
    assert verdict.accounting["calls"] == 2


def test_lr_conditioned_takes_the_lr_input(tiny_vlm: Path, tmp_path: Path) -> None:
    judge = _judge(tiny_vlm, tmp_path, protocol="lr-conditioned", retries="0")
    lr = _images(1, 16)[0]
    verdict = judge.score(_images(1, 64)[0], lr=lr)
    assert verdict.abstained and "no LR-conditioned rating" in (verdict.abstain_reason or "")
    assert judge.stats.calls == 1


def test_pairwise_compare_and_tournament(tiny_vlm: Path, tmp_path: Path) -> None:
    judge = _judge(tiny_vlm, tmp_path, protocol="pairwise", retries="0", samples="2", temperature="0.8")
    a, b, c = _images(3)
    result = judge.compare(a, b)
    assert result.winner in ("A", "B", "tie")
    assert sum(result.votes.values()) <= 4 and judge.stats.calls == 4
    ranking = judge.rank([a, b, c])
    assert len(ranking.items) == 3


def test_sampled_judgements_have_a_spread(tiny_vlm: Path, tmp_path: Path) -> None:
    judge = _judge(tiny_vlm, tmp_path, protocol="level", samples="3", temperature="1.0")
    verdict = judge.score(_images(1)[0])
    assert verdict.components["samples"] == 3.0 and verdict.components["spread"] >= 0.0


def test_logit_lens_reads_every_layer(tiny_vlm: Path, tmp_path: Path) -> None:
    judge = _judge(tiny_vlm, tmp_path)
    rows = judge.logit_lens(_images(1)[0])
    assert len(rows) == judge.backend.num_layers  # type: ignore[attr-defined]
    for row in rows:
        assert set(row) == set(LEVELS) and sum(row.values()) == pytest.approx(1.0)
    final = judge.score(_images(1)[0]).components
    for word in LEVELS:
        assert rows[-1][word] == pytest.approx(final[f"p_{word}"], abs=1e-5)
