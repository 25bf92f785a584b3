"""The line per layer that `dissect --store` ends with: units, the share of labels at each grade, mean r."""

from app.cli.run_summary import verdict_summary_line
from app.read.schemas.runs import LayerOverview


def overview(verdict_counts: dict[str, int] | None, mean_r: float | None) -> LayerOverview:
    return LayerOverview(
        name="conv_head",
        position=0,
        kind="Conv2d",
        n_units=1280,
        n_evaluated=1280 if verdict_counts else 0,
        share_generic=0.0,
        share_reliable=None,
        verdict_counts=verdict_counts,
        mean_explained_r=mean_r,
        mean_explanation_r=None,
        histogram=None,
        evaluation=None,
    )


def test_the_line_gives_each_grades_share_of_the_graded_labels_and_the_mean_r():
    line = verdict_summary_line(overview({"explains": 38, "weak": 525, "no label": 717}, 0.0612))
    assert line == "conv_head: 1280 units · explains 3% · weak 41% · no label 56% · mean r 0.06"


def test_a_run_without_evaluation_says_so_and_how_it_came_about():
    line = verdict_summary_line(overview(None, None))
    assert line == "conv_head: 1280 units · labels not graded (evaluation skipped: --folds 0)"
