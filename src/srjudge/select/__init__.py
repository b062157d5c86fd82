"""Scoring and ranking image files with a judge; later, selection and fusion of the best candidates."""

from srjudge.select.files import RankResult, ScoreRecord, rank_files, score_files

__all__ = ["RankResult", "ScoreRecord", "rank_files", "score_files"]
