"""A refresh's cells as columns: every (version, segment) numbered once, each metric's numbers as arrays.

A refresh at 20 versions x 200 segments x 6 metrics holds 24,000 cells. Judged one
Python object at a time they cost more than reading them; numbered once, in a
:class:`CellIndex` that every metric of the refresh shares, they are judged as
arrays (:func:`console.domain.verdicts.build_matrix`). The mappings by cell that an
explanation, the status JSON or a test reads are made from the columns only when
someone reads them (:class:`LazyCells`).

numpy is imported when columns are first made, never at import time: the console
draws its first frame before any of it is needed.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from console.domain.metrics import CellCounts, CellKey, _canonical_version

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

V = TypeVar("V")


class CellIndex:
    """The cells of one refresh, numbered in the order they were first placed; a number never changes.

    A version written with leading zeros is the same version (``03`` is ``3``): both
    keys are placed on one number, so two series for them are two series for one
    cell (:meth:`Columns.has_duplicates`).
    """

    __slots__ = ("keys", "position", "_canonical", "_labels")

    def __init__(self) -> None:
        self.keys: list[CellKey] = []
        """Each number's cell, canonical versions only."""
        self.position: dict[CellKey, int] = {}
        """Each key's number (a key such as ``("03", s)`` maps to ``("3", s)``'s)."""
        self._canonical: dict[str, str] = {}
        self._labels: tuple[int, list[str], NDArray[np.intp], list[str], NDArray[np.intp]] | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def place(self, keys: Sequence[CellKey]) -> NDArray[np.intp]:
        """Each key's number, numbering the keys not placed before."""
        import numpy as np

        position = self.position
        try:  # the usual refresh: every metric returns the cells the first one did
            return np.fromiter(map(position.__getitem__, keys), np.intp, len(keys))
        except KeyError:
            pass
        canonical, numbered = self._canonical, self.keys
        for key in keys:
            if key in position:
                continue
            version, segment = key
            name = canonical.get(version)
            if name is None:
                name = canonical[version] = _canonical_version(version)
            target = (name, segment) if name != version else key
            number = position.get(target)
            if number is None:
                number = position[target] = len(numbered)
                numbered.append(target)
            position[key] = number
        return np.fromiter(map(position.__getitem__, keys), np.intp, len(keys))

    def copy(self) -> CellIndex:
        """An index with the same numbers, to place more keys in without changing this one."""
        other = CellIndex()
        other.keys, other.position, other._canonical = list(self.keys), dict(self.position), dict(self._canonical)
        return other

    def labels(self) -> tuple[list[str], NDArray[np.intp], list[str], NDArray[np.intp]]:
        """The distinct versions and segments, and each cell's version and segment as an index into them."""
        import numpy as np

        known = self._labels
        if known is not None and known[0] == len(self.keys):
            return known[1:]
        count = len(self.keys)
        names: list[list[str]] = []
        codes: list[NDArray[np.intp]] = []
        for part in (itemgetter(0), itemgetter(1)):  # at C speed: 4,000 cells a refresh at 20 x 200
            distinct = list(dict.fromkeys(map(part, self.keys)))
            number = {name: i for i, name in enumerate(distinct)}
            names.append(distinct)
            codes.append(np.fromiter(map(number.__getitem__, map(part, self.keys)), np.intp, count))
        self._labels = (count, names[0], codes[0], names[1], codes[1])
        return names[0], codes[0], names[1], codes[1]


@dataclass(frozen=True, eq=False)
class Columns:
    """One metric's answer as columns over a :class:`CellIndex`.

    Attributes:
        index: the refresh's cells.
        at: the number of each cell the answer lists, in the answer's order.
        value: each of those cells' value (NaN: no data).
        successes, trials: a ratio's counts (NaN: none), for the cells ``counts_at`` numbers.
        rows: a persistence metric's values at its evaluation times, for the cells
            ``rows_at`` numbers: oldest first, the last one now (NaN: no sample).
        row_lengths: how many evaluations each row holds (the rest of the row is
            padding); ``None`` when every row is whole.
        counts_at, rows_at: the cells the counts and the rows are for (default: ``at``).
    """

    index: CellIndex
    at: NDArray[np.intp]
    value: NDArray[np.float64]
    successes: NDArray[np.float64] | None = None
    trials: NDArray[np.float64] | None = None
    rows: NDArray[np.float64] | None = None
    row_lengths: NDArray[np.intp] | None = None
    counts_at: NDArray[np.intp] = None  # type: ignore[assignment]
    rows_at: NDArray[np.intp] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.counts_at is None:
            object.__setattr__(self, "counts_at", self.at)
        if self.rows_at is None:
            object.__setattr__(self, "rows_at", self.at)

    @staticmethod
    def spread(values: NDArray[np.float64] | None, at: NDArray[np.intp], size: int) -> NDArray[np.float64]:
        """``values`` (one entry per cell ``at`` numbers) placed in ``size`` cells, NaN elsewhere and if none."""
        import numpy as np

        if values is None:
            return np.full(size, np.nan)
        full = np.full((size, *values.shape[1:]), np.nan)
        full[at] = values
        return full

    @staticmethod
    def has_duplicates(at: NDArray[np.intp]) -> bool:
        """Whether two of an answer's series fall on one cell."""
        import numpy as np

        return bool(at.size) and int(np.bincount(at).max()) > 1

    def versions_above(self, level: float) -> set[str]:
        """The versions with a listed cell whose value is above ``level``."""
        import numpy as np

        names, version_of, _, _ = self.index.labels()
        return {names[i] for i in np.unique(version_of[self.at[self.value > level]]).tolist()}

    def keys(self, at: NDArray[np.intp] | None = None) -> list[CellKey]:
        """The cells ``at`` numbers (default: the listed ones), in its order."""
        keys = self.index.keys
        return [keys[i] for i in (self.at if at is None else at).tolist()]

    def values_by_cell(self) -> dict[CellKey, float]:
        """The listed cells with a value (NaN left out: no data), by cell."""
        return {key: value for key, value in zip(self.keys(), self.value.tolist(), strict=True) if value == value}

    def counts_by_cell(self) -> dict[CellKey, CellCounts]:
        """A ratio's counts by cell."""
        if self.successes is None or self.trials is None:
            return {}
        return {key: CellCounts(x, n) for key, x, n in zip(self.keys(self.counts_at), self.successes.tolist(),
                                                              self.trials.tolist(), strict=True)}


FleetKey = tuple[str, str, str]
"""A fleet answer's series: (model, version, segment)."""


class FleetIndex:
    """Each model's :class:`CellIndex` for one fleet refresh, and a fleet answer's series placed on them at once.

    A fleet answer lists every model's series together. Placed model by model, 50
    models x 6 metrics pay numpy's fixed cost 300 times a refresh; here each series'
    (model, version, segment) is numbered through one dict for the whole fleet and an
    answer is grouped by model with one sort (:meth:`place`). Each model's cells are
    numbered in its own index as :meth:`CellIndex.place` numbers them.
    """

    __slots__ = ("models", "indexes", "_model_number", "_position")

    def __init__(self, models: Sequence[str]) -> None:
        self.models = tuple(models)
        self.indexes = tuple(CellIndex() for _ in self.models)
        self._model_number = {model: number for number, model in enumerate(self.models)}
        self._position: dict[FleetKey, int] = {}
        """Each key's model number and cell number packed as ``model << 32 | cell``; -1 for another model."""

    def place(self, keys: Sequence[FleetKey]) -> FleetCells:
        """The series ``keys`` label, numbered in their models' indexes and grouped by model."""
        import numpy as np

        position = self._position
        try:  # the usual refresh: every metric returns the cells the first one did
            packed = np.fromiter(map(position.__getitem__, keys), np.int64, len(keys))
        except KeyError:
            new: dict[int, list[FleetKey]] = {}
            for key in keys:
                if key not in position:
                    model = self._model_number.get(key[0])
                    if model is None:
                        position[key] = -1  # another model's series: left out
                    else:
                        new.setdefault(model, []).append(key)
            for model, placed in new.items():
                numbers = self.indexes[model].place([key[1:] for key in placed])
                position.update(zip(placed, [model << 32 | number for number in numbers.tolist()], strict=True))
            packed = np.fromiter(map(position.__getitem__, keys), np.int64, len(keys))
        ours = np.flatnonzero(packed >= 0)
        model_of = packed[ours] >> 32
        order = ours[np.argsort(model_of, kind="stable")]  # by model, in the answer's order within one
        counts = np.bincount(model_of, minlength=len(self.models))
        return FleetCells(order, (packed[order] >> 32).astype(np.intp, copy=False),
                          (packed[order] & 0xFFFFFFFF).astype(np.intp, copy=False), np.cumsum(counts).tolist())

    def flat(self, cells: FleetCells) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Each of ``cells``' series' cell numbered over every model's cells laid end to end; and each of those
        cells' model."""
        import numpy as np

        sizes = np.fromiter(map(len, self.indexes), np.intp, len(self.indexes))
        starts = np.cumsum(sizes) - sizes
        return starts[cells.model] + cells.at, np.repeat(np.arange(len(sizes)), sizes)


@dataclass(frozen=True, eq=False)
class FleetCells:
    """A fleet answer's series of the fleet's models, grouped by model (:meth:`FleetIndex.place`).

    Attributes:
        order: the series' positions in the answer, model by model (the answer's order within one).
        model: each of those series' model, as its number in :attr:`FleetIndex.models`.
        at: each of those series' cell, as its number in its model's index.
        ends: per model, where its series end in ``order`` (they start where the previous model's end).
    """

    order: NDArray[np.intp]
    model: NDArray[np.intp]
    at: NDArray[np.intp]
    ends: list[int]

    def bounds(self, model: int) -> slice:
        """Where model number ``model``'s series lie in ``order``, ``model`` and ``at``."""
        return slice(self.ends[model - 1] if model else 0, self.ends[model])

    def with_duplicates(self) -> set[int]:
        """The models with two series on one cell."""
        import numpy as np

        packed = np.sort(self.model << 32 | self.at)
        repeated = packed[1:][packed[1:] == packed[:-1]]
        return set((repeated >> 32).tolist())


class LazyCells(Mapping[CellKey, V]):
    """A mapping by cell made the first time someone reads it (most refreshes never do)."""

    __slots__ = ("_make", "_cells")

    def __init__(self, make: Callable[[], dict[CellKey, V]]) -> None:
        self._make = make
        self._cells: dict[CellKey, V] | None = None

    def _made(self) -> dict[CellKey, V]:
        # A matrix is read by the console's thread and its workers at once: two first reads may both make the
        # mapping (the same one), and neither may find it half made, so the maker is kept.
        cells = self._cells
        if cells is None:
            cells = self._cells = self._make()
        return cells

    def __getitem__(self, key: CellKey) -> V:
        return self._made()[key]

    def __iter__(self) -> Iterator[CellKey]:
        return iter(self._made())

    def __len__(self) -> int:
        return len(self._made())

    # The dict's own views and lookups: Mapping's would take a Python-level step per cell.
    def __contains__(self, key: object) -> bool:
        return key in self._made()

    def get(self, key: CellKey, default: Any = None) -> Any:
        return self._made().get(key, default)

    def keys(self) -> KeysView[CellKey]:
        return self._made().keys()

    def values(self) -> ValuesView[V]:
        return self._made().values()

    def items(self) -> ItemsView[CellKey, V]:
        return self._made().items()

    def __repr__(self) -> str:
        return repr(self._made())
