"""The ranking rules of DESIGN.md §1: execution cut, final order, early stop, budget split."""

from __future__ import annotations

from kat_lsp.pipeline.ranking import Scored, dominant_group, execution_cut, final_order
from kat_lsp.pipeline.runner import split_budget


def cand(
    rep: int, passed: int = 0, total: int = 2, size: int = 1, scores=(), regressions=0
) -> Scored:
    return Scored(
        key=f"k{rep}",
        representative=rep,
        samples=list(range(rep, rep + size)),
        round=0,
        patch="",
        files=[],
        tests_passed=passed,
        tests_total=total,
        regressions=regressions,
        judge_scores=list(scores),
    )


def reps(items: list[Scored]) -> list[int]:
    return [c.representative for c in items]


def test_cut_keeps_top_k_by_tests_passed() -> None:
    items = [cand(0, 0), cand(1, 2), cand(2, 1), cand(3, 2), cand(4, 1)]
    assert reps(execution_cut(items, 2)) == [1, 3]


def test_ties_at_the_cut_go_on_together() -> None:
    items = [cand(0, 2), cand(1, 1), cand(2, 1), cand(3, 1)]
    assert reps(execution_cut(items, 2)) == [0, 1, 2, 3]


def test_candidates_passing_nothing_go_on_only_when_none_passes_anything() -> None:
    assert reps(execution_cut([cand(0, 0), cand(1, 1)], 3)) == [1]
    assert reps(execution_cut([cand(0, 0), cand(1, 0)], 3)) == [0, 1]


def test_fewer_regressions_break_ties_of_tests() -> None:
    items = [cand(0, 2, regressions=3), cand(1, 2, regressions=0), cand(2, 1)]
    assert reps(execution_cut(items, 1)) == [1]


def test_final_order_score_then_tests_then_size_then_earliest() -> None:
    items = [
        cand(0, 1, scores=[7]),
        cand(1, 2, scores=[7]),  # same score, more tests
        cand(2, 2, size=3, scores=[7]),  # same score and tests, larger group
        cand(3, 2, size=3, scores=[7]),  # same as 2 but later
        cand(4, 0, scores=[9, 8]),  # best mean score
        cand(5, 2),  # no score at all: last
    ]
    assert reps(final_order(items)) == [4, 2, 3, 1, 0, 5]
    assert items[4].judge_score == 8.5


def test_judges_favourite_passing_no_test_is_cut_before_it_can_win() -> None:
    favourite, correct = cand(0, 0, scores=[10]), cand(1, 1, scores=[6])
    assert reps(final_order(execution_cut([favourite, correct], 3))) == [1]


def test_early_stop_needs_a_majority_that_passes_every_test() -> None:
    big = cand(0, 2, size=3)
    assert dominant_group([big, cand(3, 2)], samples_so_far=4, tests_kept=2) is big
    assert (
        dominant_group([cand(0, 2, size=2)], samples_so_far=4, tests_kept=2) is None
    )  # half is not more
    assert (
        dominant_group([cand(0, 1, size=3)], samples_so_far=4, tests_kept=2) is None
    )  # fails a test
    assert dominant_group([cand(0, 0, total=0, size=4)], samples_so_far=4, tests_kept=0) is None


def test_budget_split_over_rounds() -> None:
    assert split_budget(8, 3) == [3, 3, 2]
    assert split_budget(4, 1) == [4]
    assert split_budget(2, 2) == [1, 1]
