"""Folder sources: one ``<table>.parquet`` or ``<table>.csv`` file per contract table.

File names are matched case-insensitively (Parquet wins over CSV). Parquet is read with
``iter_batches``, CSV with pyarrow's streaming reader, so memory stays bounded.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.contract import ARROW_TYPES, Column, Table, get_table
from pipelines.extract.base import (
    SAMPLE_SCAN_ROWS,
    SAMPLE_VALUES,
    UNREADABLE,
    Source,
    batch_schema,
)
from pipelines.extract.casting import BadValues, cast_arrow, unreadable_column

FILE_SUFFIXES = (".parquet", ".csv")


def _rebatch(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.RecordBatch]:
    """Regroup batches into batches of ``chunk_rows`` rows (the last may be smaller)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= chunk_rows:
            table = pa.Table.from_batches(pending)
            head, tail = table.slice(0, chunk_rows), table.slice(chunk_rows)
            yield head.combine_chunks().to_batches()[0]
            pending = tail.combine_chunks().to_batches() if tail.num_rows else []
            count = tail.num_rows
    if count:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


class FolderSource(Source):
    """A folder with one ``<table>.parquet`` or ``<table>.csv`` file per contract table."""

    def __init__(self, system: str, folder: Path) -> None:
        super().__init__(system, str(folder))
        self.folder = folder

    def _files(self) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for suffix in FILE_SUFFIXES:  # parquet wins over csv
            for path in sorted(self.folder.iterdir()):
                if path.is_file() and path.suffix.lower() == suffix:
                    files.setdefault(path.stem, path)
                    files.setdefault(path.stem.lower(), path)
        return files

    def _table_names(self) -> dict[str, str]:
        return {k: p.name for k, p in self._files().items()}

    def _path(self, actual: str) -> Path:
        return self.folder / actual

    def _column_names(self, actual_table: str) -> list[str]:
        path = self._path(actual_table)
        if path.suffix.lower() == ".parquet":
            return list(pq.ParquetFile(path).schema_arrow.names)
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
        return [h.strip() for h in header]

    def _count_rows(self, actual_table: str) -> int:
        path = self._path(actual_table)
        if path.suffix.lower() == ".parquet":
            pfile = pq.ParquetFile(path)
            try:
                return pfile.metadata.num_rows
            finally:
                pfile.close()
        header = self._column_names(actual_table)
        if not header:
            return 0
        reader = pacsv.open_csv(  # streams; quoted line breaks are handled by the parser
            path,
            read_options=pacsv.ReadOptions(
                column_names=header, skip_rows=1, block_size=4 << 20, encoding="utf8"
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=header[:1], column_types={header[0]: pa.string()}
            ),
        )
        try:
            return sum(batch.num_rows for batch in reader)
        finally:
            reader.close()

    def _raw_batches(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        """Untyped batches with the contract's column names, in contract order."""
        actual, mapping = self._resolve(table)
        path = self._path(actual)
        names = [mapping[c] for c in table.column_names]
        if path.suffix.lower() == ".parquet":
            pfile = pq.ParquetFile(path)
            try:
                for batch in pfile.iter_batches(batch_size=chunk_rows, columns=names):
                    yield pa.RecordBatch.from_arrays(
                        [batch.column(n) for n in names], names=table.column_names
                    )
            finally:
                pfile.close()
            return
        header = self._column_names(actual)
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=header, skip_rows=1, block_size=4 << 20, encoding="utf8"
            ),
            convert_options=pacsv.ConvertOptions(
                include_columns=names,
                column_types=dict.fromkeys(names, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
        try:
            batches = (
                pa.RecordBatch.from_arrays([b.column(n) for n in names], names=table.column_names)
                for b in reader
            )
            yield from _rebatch(batches, chunk_rows)
        finally:
            reader.close()

    def _sample(self, table: Table, column: Column) -> tuple[list[Any], list[dict[str, Any]]]:
        values: list[Any] = []
        keys: list[dict[str, Any]] = []
        scanned = 0
        for batch in self._raw_batches(table, 10_000):
            arr = batch.column(column.name)
            mask = pc.is_valid(arr)
            picked = batch.filter(mask).slice(0, SAMPLE_VALUES - len(values))
            values += picked.column(column.name).to_pylist()
            key_cols = {k: picked.column(k).to_pylist() for k in table.primary_key}
            keys += [{k: key_cols[k][i] for k in table.primary_key} for i in range(picked.num_rows)]
            scanned += batch.num_rows
            if len(values) >= SAMPLE_VALUES or scanned >= SAMPLE_SCAN_ROWS:
                break
        return values, keys

    def _typed(self, table: Table, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        bad_by_column: dict[str, BadValues] = {}
        for col in table.columns:
            array, bad = cast_arrow(batch.column(col.name), col)
            arrays.append(array)
            if bad:
                bad_by_column[col.name] = bad
        arrays.append(unreadable_column(batch.num_rows, bad_by_column))
        return pa.RecordBatch.from_arrays(arrays, schema=batch_schema(table))

    def _typed_batches(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        for batch in self._raw_batches(table, chunk_rows):
            yield self._typed(table, batch)

    def _changed_keys(self, parent: Table, key: str, since: datetime) -> pa.Array:
        """Distinct ``key`` values of the parent rows changed since ``since``."""
        incr = parent.incremental_column
        assert incr is not None, f"parent {parent.name} needs an incremental column"
        bound = pa.scalar(since, pa.timestamp("us"))
        parts = []
        for batch in self._typed_batches(parent, 100_000):
            changed = batch.filter(pc.greater_equal(batch.column(incr), bound))
            if changed.num_rows:
                parts.append(pc.unique(changed.column(key)))
        if not parts:
            return pa.array([], type=ARROW_TYPES[parent.column(key).type])
        return pc.unique(pa.chunked_array(parts))

    def _iter_typed(
        self, table: Table, since: datetime | None, chunk_rows: int
    ) -> Iterator[pa.RecordBatch]:
        if since is None or (table.parent is None and table.incremental_column is None):
            yield from self._typed_batches(table, chunk_rows)
            return
        if table.parent is not None:
            parent = get_table(table.system, table.parent[0])
            key = table.parent[1]
            changed = self._changed_keys(parent, key, since)
            if len(changed) == 0:
                return
            for batch in self._typed_batches(table, chunk_rows):
                picked = batch.filter(pc.is_in(batch.column(key), value_set=changed))
                if picked.num_rows:
                    yield picked
            return
        bound = pa.scalar(since, pa.timestamp("us"))
        incr = table.incremental_column
        for batch in self._typed_batches(table, chunk_rows):
            # rows with an unreadable value are always passed on: their incremental
            # column may be the unreadable one, and the loader must see them to keep them
            changed = pc.or_kleene(
                pc.greater_equal(batch.column(incr), bound), pc.is_valid(batch.column(UNREADABLE))
            )
            picked = batch.filter(changed)
            if picked.num_rows:
                yield picked
