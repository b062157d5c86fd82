"""Scoring, ranking, selecting and fusing candidate SR images."""

from srjudge.select.files import RankResult, ScoreRecord, rank_files, score_files
from srjudge.select.fusion import FUSE_METHODS, fuse, fuse_scored, fusion_weights
from srjudge.select.selection import Selection, select_best

__all__ = [
    "FUSE_METHODS",
    "RankResult",
    "ScoreRecord",
    "Selection",
    "fuse",
    "fuse_scored",
    "fusion_weights",
    "rank_files",
    "score_files",
    "select_best",
]
