"""The dashboard's pure modules: the watermark and its gaps, the time-to-apply sketch and the
charts' coordinates. They import no Django (DESIGN.md, layout)."""

from __future__ import annotations

import ast
import datetime
import json
import re
from pathlib import Path

import pytest

from compliance.dashboard import charts, sketch
from compliance.dashboard.watermarks import MAX_GAPS, Gap, Position, advance

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["watermarks", "sketch", "charts"])
def test_module_imports_nothing_from_django(name):
    # Read, not imported: importing anything under compliance/ starts the Celery app.
    tree = ast.parse((REPO / "compliance" / "dashboard" / f"{name}.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m == "django" or m.startswith(("django.", "compliance"))}


# --- watermarks --------------------------------------------------------------------------------


def test_ids_read_in_order_move_the_watermark_and_leave_no_gap():
    moved = advance(Position(), new_ids=[1, 2, 3], now=100, max_age=60)
    assert moved == Position(last_id=3, gaps=())


def test_ids_missing_below_the_watermark_become_gaps_read_again_later():
    # 3 and 5-6 were taken by transactions that had not committed yet.
    moved = advance(Position(last_id=1), new_ids=[2, 4, 7], now=100, max_age=60)
    assert moved.last_id == 7
    assert moved.gaps == (Gap(3, 3, 100), Gap(5, 6, 100))

    # 5 commits: read inside its gap, it leaves 6 missing; 3 is still missing.
    later = advance(moved, new_ids=[8], filled_ids=[5], now=110, max_age=60)
    assert later == Position(last_id=8, gaps=(Gap(3, 3, 100), Gap(6, 6, 100)))


def test_a_gap_nobody_fills_is_dropped_once_too_old():
    moved = advance(Position(last_id=1), new_ids=[5], now=100, max_age=60)
    assert moved.gaps == (Gap(2, 4, 100),)
    assert advance(moved, new_ids=[], now=160, max_age=60).gaps == (Gap(2, 4, 100),)
    assert advance(moved, new_ids=[], now=161, max_age=60).gaps == ()


def test_an_id_filled_in_the_middle_of_a_gap_splits_it():
    position = Position(last_id=20, gaps=(Gap(10, 15, 5),))
    moved = advance(position, new_ids=[], filled_ids=[12, 13], now=6, max_age=60)
    assert moved.gaps == (Gap(10, 11, 5), Gap(14, 15, 5))
    assert advance(moved, new_ids=[], filled_ids=[10, 11, 14, 15], now=7, max_age=60).gaps == ()


def test_an_id_at_or_below_the_watermark_is_refused_as_new():
    with pytest.raises(ValueError, match="not above the watermark 5"):
        advance(Position(last_id=5), new_ids=[5, 6], now=0, max_age=60)


def test_past_the_cap_the_oldest_gaps_go_first():
    gaps = tuple(Gap(2 * i, 2 * i, float(i)) for i in range(1, MAX_GAPS + 1))
    position = Position(last_id=2 * MAX_GAPS + 1, gaps=gaps)
    moved = advance(position, new_ids=[2 * MAX_GAPS + 3], now=MAX_GAPS + 1, max_age=1e9)
    assert len(moved.gaps) == MAX_GAPS
    assert Gap(2, 2, 1.0) not in moved.gaps
    assert moved.gaps[-1] == Gap(2 * MAX_GAPS + 2, 2 * MAX_GAPS + 2, MAX_GAPS + 1)


def test_gaps_survive_their_json_form():
    gap = Gap(3, 9, 1700000000.5)
    assert Gap.from_json(json.loads(json.dumps(gap.as_json()))) == gap


# --- sketch ------------------------------------------------------------------------------------


def sketch_of(*seconds: float) -> sketch.Sketch:
    found = sketch.Sketch()
    for value in seconds:
        found.add(value)
    return found


def test_one_opt_out_is_its_own_median():
    assert sketch_of(30).median() == 30


def test_the_median_of_an_odd_count_is_the_middle_time():
    assert sketch_of(12, 50, 3 * 86400).median() == 50


def test_the_median_of_an_even_count_lies_between_the_middle_two():
    # 60 s and 3 days are the middle two of four.
    assert sketch_of(30, 60, 3 * 86400, 54 * 86400).median() == (60 + 3 * 86400) / 2


def test_times_sharing_a_bucket_give_its_mean_within_the_bucket():
    median = sketch_of(12, 14, 19, 3600 * 30).median()
    assert 10 <= median < 20
    assert median == pytest.approx((12 + 14 + 19) / 3)


def test_days_add_up_and_survive_their_json_form():
    monday, tuesday = sketch_of(40), sketch_of(50, 3 * 86400)
    both = monday.merge(tuesday)
    assert both.total == 3
    assert both.median() == 45  # the mean of the 30-60 s bucket, where 40 and 50 are
    stored = json.loads(json.dumps(both.as_json()))
    assert sketch.Sketch.from_json(stored) == both
    # A form kept before a bucket was added reads as zeros where it is short.
    assert sketch.Sketch.from_json({"counts": [1], "seconds": [0.5]}).median() == 0.5
    assert sketch.Sketch.from_json({}).median() is None


def test_no_opt_outs_have_no_median_and_a_negative_time_counts_as_none():
    assert sketch.Sketch().median() is None
    assert sketch.bucket_of(-3) == 0
    assert sketch_of(-3).median() == 0


def test_the_buckets_meet_the_deadlines():
    # A time just inside 48 hours and one just past it never share a bucket.
    assert sketch.bucket_of(48 * 3600 - 1) != sketch.bucket_of(48 * 3600)
    assert sketch.bucket_of(14 * 86400 - 1) != sketch.bucket_of(14 * 86400)


# --- charts ------------------------------------------------------------------------------------

DAYS = [datetime.date(2026, 11, 1) + datetime.timedelta(days=i) for i in range(10)]


def _points(segment: str) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in segment.split()]


def test_a_line_is_drawn_left_to_right_higher_for_a_higher_rate():
    values = [0.001 * (i % 3) for i in range(10)]
    chart = charts.line_chart(DAYS, [charts.Series("acme", values)], value_label=str)
    (line,) = chart.lines
    (segment,) = line.segments
    points = _points(segment)
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    frame = chart.frame
    assert all(frame.left <= x <= frame.plot_right for x, _ in points)
    assert all(frame.top <= y <= frame.plot_bottom for _, y in points)
    # Day 1 (0.1%) is above day 0 (0%): SVG's y grows downwards.
    assert points[1][1] < points[0][1]
    assert points[0][1] == frame.plot_bottom


def test_a_day_without_deliveries_breaks_the_line():
    values = [0.001, 0.002, None, None, 0.001, 0.001, 0.001, None, 0.003, 0.002]
    (line,) = charts.line_chart(DAYS, [charts.Series("acme", values)]).lines
    assert [len(s.split()) for s in line.segments] == [2, 3, 2]
    assert len(line.markers) == 7


def test_the_lines_are_in_sight_even_when_every_rate_is_low():
    chart = charts.line_chart(
        DAYS,
        [charts.Series("acme", [0.0001] * 10)],
        rules=[("0.3%", 0.003), ("0.1%", 0.001)],
        least_top=0.0036,
    )
    warning, alert = chart.rules
    assert (warning.label, alert.label) == ("0.1%", "0.3%")
    frame = chart.frame
    assert frame.top <= alert.y < warning.y < frame.plot_bottom
    # The 0.3% line sits three times as high above the axis as the 0.1% line.
    assert (frame.plot_bottom - alert.y) == pytest.approx(3 * (frame.plot_bottom - warning.y), 0.01)


def test_a_high_rate_raises_the_axis_above_it():
    chart = charts.line_chart(DAYS, [charts.Series("acme", [0.02] * 10)], rules=[("0.3%", 0.003)])
    top = max(chart.y_ticks, key=lambda t: -t.position)
    assert float(top.label) >= 0.02


def test_each_series_gets_its_own_colour_and_at_most_eight_day_labels():
    many = [charts.Series(f"s{i}", [0.001] * 10) for i in range(3)]
    chart = charts.line_chart(DAYS, many)
    assert len({line.colour for line in chart.lines}) == 3
    month = [datetime.date(2026, 11, 1) + datetime.timedelta(days=i) for i in range(30)]
    ticks = charts.line_chart(month, []).x_ticks
    assert len(ticks) <= charts.MAX_X_LABELS
    assert ticks[-1].label == "30 Nov"


def test_bars_stand_on_the_axis_side_by_side_and_scale_with_the_count():
    series = [charts.Series("reports", [2] * 10), charts.Series("bounces", [4] * 10)]
    chart = charts.bar_chart(DAYS, series)
    frame = chart.frame
    first_day = [b for b in chart.bars if "2026-11-01" in b.title]
    reports, bounces = first_day
    assert reports.x + reports.width <= bounces.x + 0.1
    assert reports.y + reports.height == pytest.approx(frame.plot_bottom, abs=0.1)
    assert bounces.height == pytest.approx(2 * reports.height, abs=0.2)
    assert [label for label, _ in chart.legend] == ["reports", "bounces"]
    # Whole counts: every axis label is a whole number.
    assert all(re.fullmatch(r"\d+", t.label) for t in chart.y_ticks)


def test_a_zero_draws_no_bar_and_an_empty_chart_still_has_an_axis():
    chart = charts.bar_chart(DAYS, [charts.Series("reports", [0] * 10)])
    assert chart.bars == ()
    assert len(chart.y_ticks) >= 2


def test_a_series_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="one value per day"):
        charts.line_chart(DAYS, [charts.Series("acme", [0.1])])
    with pytest.raises(ValueError, match="one value per day"):
        charts.bar_chart(DAYS, [charts.Series("acme", [1, 2])])


@pytest.mark.parametrize(
    ("maximum", "whole", "expected"),
    [(0.0033, False, (0.004, 0.001)), (7, True, (8, 2)), (10, True, (10, 5)), (0, True, (4, 1))],
)
def test_axes_end_on_a_round_number(maximum, whole, expected):
    top, step = charts.nice_scale(maximum, whole=whole)
    assert (top, step) == pytest.approx(expected)
