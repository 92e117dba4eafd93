"""Numbering a refresh's cells: one model's index, and a fleet answer placed on every model's index at once."""

from __future__ import annotations

from console.domain.cells import CellIndex, FleetIndex


def test_a_cell_index_numbers_each_cell_once_and_a_version_written_with_zeros_is_the_same_version():
    index = CellIndex()
    assert index.place([("2", "eu"), ("3", "eu")]).tolist() == [0, 1]
    assert index.place([("03", "eu"), ("2", "us"), ("2", "eu")]).tolist() == [1, 2, 0]
    assert index.keys == [("2", "eu"), ("3", "eu"), ("2", "us")]


def test_a_fleet_answer_is_grouped_by_model_in_the_answers_order_and_other_models_are_left_out():
    fleet = FleetIndex(["a", "b", "c"])
    keys = [("b", "1", "eu"), ("a", "1", "eu"), ("x", "1", "eu"), ("b", "2", "eu"), ("a", "1", "us")]
    cells = fleet.place(keys)
    assert cells.order.tolist() == [1, 4, 0, 3]  # a's series, then b's; model x is not in the fleet
    assert cells.model.tolist() == [0, 0, 1, 1]
    assert [cells.order[cells.bounds(number)].tolist() for number in range(3)] == [[1, 4], [0, 3], []]
    assert cells.at.tolist() == [0, 1, 0, 1]
    assert fleet.indexes[0].keys == [("1", "eu"), ("1", "us")]
    assert fleet.indexes[1].keys == [("1", "eu"), ("2", "eu")]
    assert len(fleet.indexes[2]) == 0
    # The next metric's answer, in another order and with one more cell, finds the same numbers.
    again = fleet.place([("a", "1", "us"), ("b", "2", "eu"), ("a", "01", "eu"), ("b", "1", "us")])
    assert again.order.tolist() == [0, 2, 1, 3]
    assert again.at.tolist() == [1, 0, 1, 2]
    assert fleet.indexes[1].keys[2] == ("1", "us")
    assert again.with_duplicates() == set()


def test_two_series_on_one_cell_name_their_model_and_cells_lie_end_to_end_over_the_fleet():
    fleet = FleetIndex(["a", "b"])
    cells = fleet.place([("a", "1", "eu"), ("b", "1", "eu"), ("b", "01", "eu"), ("a", "2", "eu")])
    assert cells.with_duplicates() == {1}  # b's "1" and "01" are one cell; a's two series are two cells
    flat, model_of_flat = fleet.flat(cells)
    assert flat.tolist() == [0, 1, 2, 2]  # a has two cells (0, 1), b one (2)
    assert model_of_flat.tolist() == [0, 0, 1]
