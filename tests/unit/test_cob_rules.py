"""The bucket and classification-floor rules of DOMAIN.md, as the close applies them."""

from plugins.servicing.cob import DEFAULT_BUCKET_EDGES, DEFAULT_FLOORS
from plugins.servicing.cob_sql import bucket_of, effective, floor_of


def test_buckets_follow_the_edges() -> None:
    got = {d: bucket_of(d, DEFAULT_BUCKET_EDGES) for d in (0, 1, 30, 31, 60, 61, 90, 91, 400)}
    assert got == {0: "M0", 1: "M1", 30: "M1", 31: "M2", 60: "M2", 61: "M3", 90: "M3",
                   91: "M3+", 400: "M3+"}


def test_floors_follow_the_2023_rules_and_overrides_only_worsen() -> None:
    got = {d: floor_of(d, DEFAULT_FLOORS) for d in (0, 1, 90, 91, 270, 271, 360, 361)}
    assert got == {0: "normal", 1: "attention", 90: "attention", 91: "substandard",
                   270: "substandard", 271: "doubtful", 360: "doubtful", 361: "loss"}
    assert effective("substandard", "attention") == "substandard"
    assert effective("attention", "loss") == "loss" and effective("normal", None) == "normal"
