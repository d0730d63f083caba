"""Folder sources: one ``<table>.parquet`` or ``<table>.csv`` file per contract table.

File names are matched case-insensitively (Parquet wins over CSV). Parquet is read with
``iter_batches``, CSV with pyarrow's streaming reader, so memory stays bounded.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.contract import ARROW_TYPES, Column, Table, get_table, tables_of
from pipelines.extract.base import (
    SAMPLE_SCAN_ROWS,
    SAMPLE_VALUES,
    UNREADABLE,
    ContractError,
    Source,
    batch_schema,
)
from pipelines.extract.casting import BadValues, cast_arrow, unreadable_column

FILE_SUFFIXES = (".parquet", ".csv")
ENCODING_SETTING = "KAM_CSV_ENCODING"
#: a CSV file is taken for one in another encoding (the run stops, naming the file and
#: ENCODING_SETTING) when at least this many sampled values cannot be decoded and they are
#: more than half of the sampled values holding non-ASCII bytes; fewer are single bad values
#: (quarantined as unreadable_value)
MIN_UNDECODABLE_FOR_FILE = 2


def ascii_compatible(encoding: str) -> bool:
    """Whether CSV structure (delimiters, quotes, line ends) is plain ASCII in ``encoding``:
    then the file can be parsed as bytes and each value decoded on its own."""
    try:
        return ',"\r\nAz09'.encode(encoding) == b',"\r\nAz09'
    except (LookupError, UnicodeError):
        return False


def decode_values(arr: pa.Array, encoding: str, utf8: bool) -> tuple[pa.Array, dict[int, str], int]:
    """A binary array of CSV values as text: (strings, {index: shown bytes} of the values
    that cannot be decoded (null in the strings), number of values with non-ASCII bytes)."""
    try:
        text = pc.cast(arr, pa.string())
    except pa.ArrowInvalid:  # not valid UTF-8
        text = None
    if text is not None:
        ascii_count = pc.sum(pc.string_is_ascii(text)).as_py() or 0
        non_ascii = len(text) - text.null_count - ascii_count
        if utf8 or non_ascii == 0:
            return text, {}, non_ascii
    out: list[str | None] = []
    bad: dict[int, str] = {}
    non_ascii = 0
    for i, value in enumerate(arr.to_pylist()):
        if value is None:
            out.append(None)
            continue
        if not value.isascii():
            non_ascii += 1
        try:
            out.append(value.decode(encoding))
        except UnicodeDecodeError:
            out.append(None)
            bad[i] = value.decode(encoding, errors="backslashreplace")
    return pa.array(out, type=pa.string()), bad, non_ascii


@dataclass
class _RawBatch:
    """Untyped rows of a file: contract names, text (or file types), in file order."""

    batch: pa.RecordBatch
    start: int  # rows of the file before this batch
    undecodable: dict[str, dict[int, str]] = field(default_factory=dict)
    non_ascii: int = 0


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

    def __init__(self, system: str, folder: Path, encoding: str = "utf-8") -> None:
        super().__init__(system, str(folder))
        self.folder = folder
        codecs.lookup(encoding)  # raises LookupError on an unknown encoding
        self.encoding = encoding
        self._utf8 = codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
        # ASCII-compatible encodings are parsed as bytes and decoded value by value, so one
        # bad value is one unreadable value; others (UTF-16, ...) are transcoded by pyarrow
        self._per_value = ascii_compatible(encoding)

    def _csv_read_options(self, header: list[str]) -> pacsv.ReadOptions:
        return pacsv.ReadOptions(
            column_names=header,
            skip_rows=1,
            block_size=4 << 20,
            encoding="utf8" if self._per_value else self.encoding,
        )

    def _encoding_error(self, path: Path, detail: str) -> ContractError:
        return ContractError(
            f"{self.system}: {path.name} cannot be read in the declared encoding "
            f"{self.encoding} ({detail}); set {ENCODING_SETTING} to the file's encoding "
            "(e.g. latin-1 or cp1252)"
        )

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
        encoding = "utf-8-sig" if self._utf8 else self.encoding
        try:
            if self._per_value:  # the first line only: a bad byte further down is a value's
                with path.open("rb") as fh:
                    text = fh.readline().decode(encoding)
            else:
                with path.open(newline="", encoding=encoding) as fh:
                    text = fh.readline()
        except UnicodeDecodeError as exc:
            raise self._encoding_error(path, f"header line: {exc.reason}") from None
        header = next(csv.reader([text]), [])
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
        try:
            reader = pacsv.open_csv(  # streams; quoted line breaks are handled by the parser
                path,
                read_options=self._csv_read_options(header),
                convert_options=pacsv.ConvertOptions(
                    include_columns=header[:1], column_types={header[0]: pa.binary()}
                ),
            )
            try:
                return sum(batch.num_rows for batch in reader)
            finally:
                reader.close()
        except UnicodeDecodeError as exc:
            raise self._encoding_error(path, exc.reason) from None

    def _raw_batches(self, table: Table, chunk_rows: int) -> Iterator[_RawBatch]:
        """Untyped batches with the contract's column names, in contract order and file
        order; CSV values decoded with the declared encoding (undecodable ones null)."""
        actual, mapping = self._resolve(table)
        path = self._path(actual)
        names = [mapping[c] for c in table.column_names]
        start = 0
        if path.suffix.lower() == ".parquet":
            pfile = pq.ParquetFile(path)
            try:
                for batch in pfile.iter_batches(batch_size=chunk_rows, columns=names):
                    yield _RawBatch(
                        pa.RecordBatch.from_arrays(
                            [batch.column(n) for n in names], names=table.column_names
                        ),
                        start,
                    )
                    start += batch.num_rows
            finally:
                pfile.close()
            return
        header = self._column_names(actual)
        try:
            reader = pacsv.open_csv(
                path,
                read_options=self._csv_read_options(header),
                convert_options=pacsv.ConvertOptions(
                    include_columns=names,
                    column_types=dict.fromkeys(names, pa.binary()),
                    null_values=[""],
                    strings_can_be_null=True,
                ),
            )
            try:
                batches = (
                    pa.RecordBatch.from_arrays(
                        [b.column(n) for n in names], names=table.column_names
                    )
                    for b in reader
                )
                value_encoding = self.encoding if self._per_value else "utf-8"
                utf8 = self._utf8 or not self._per_value
                for batch in _rebatch(batches, chunk_rows):
                    arrays, undecodable, non_ascii = [], {}, 0
                    for name in table.column_names:
                        text, bad, n = decode_values(batch.column(name), value_encoding, utf8)
                        arrays.append(text)
                        non_ascii += n
                        if bad:
                            undecodable[name] = bad
                    yield _RawBatch(
                        pa.RecordBatch.from_arrays(arrays, names=table.column_names),
                        start,
                        undecodable,
                        non_ascii,
                    )
                    start += batch.num_rows
            finally:
                reader.close()
        except UnicodeDecodeError as exc:  # a transcoded (not ASCII-compatible) encoding
            raise self._encoding_error(path, exc.reason) from None

    def _encoding_problems(self) -> list[str]:
        """CSV files that look written in another encoding than the declared one."""
        problems = []
        for table in tables_of(self.system):  # type: ignore[arg-type]
            if table.name not in self._names:
                continue  # missing: reported by the contract check
            path = self._path(self._names[table.name])
            if path.suffix.lower() != ".csv":
                continue
            bad = non_ascii = scanned = 0
            example = ""
            try:
                for raw in self._raw_batches(table, 10_000):
                    non_ascii += raw.non_ascii
                    for column, values in raw.undecodable.items():
                        bad += len(values)
                        if not example:
                            index, shown = next(iter(values.items()))
                            line = raw.start + index + 2
                            example = f" (e.g. line {line}, column '{column}': {shown!r})"
                    scanned += raw.batch.num_rows
                    if scanned >= SAMPLE_SCAN_ROWS:
                        break
            except ContractError as exc:
                problems += exc.problems
                continue
            if bad >= MIN_UNDECODABLE_FOR_FILE and bad > non_ascii / 2:
                problems.append(
                    f"{self.system}.{table.name}: {path.name} does not look {self.encoding}: "
                    f"{bad} of {non_ascii} sampled values with non-ASCII bytes cannot be "
                    f"decoded{example}; set {ENCODING_SETTING} to the file's encoding "
                    "(e.g. latin-1 or cp1252)"
                )
        return problems

    def check_contract(self) -> None:
        """The contract check of every source, then the encoding of the CSV files."""
        problems: list[str] = []
        try:
            super().check_contract()
        except ContractError as exc:
            problems += exc.problems
        problems += self._encoding_problems()
        if problems:
            raise ContractError("; ".join(problems), problems)

    def _sample(self, table: Table, column: Column) -> tuple[list[Any], list[dict[str, Any]]]:
        values: list[Any] = []
        keys: list[dict[str, Any]] = []
        scanned = 0
        for raw in self._raw_batches(table, 10_000):
            batch = raw.batch
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

    def _typed(self, table: Table, raw: _RawBatch, file_name: str) -> pa.RecordBatch:
        batch = raw.batch
        arrays = []
        bad_by_column: dict[str, BadValues] = {}
        for col in table.columns:
            array, bad = cast_arrow(batch.column(col.name), col)
            arrays.append(array)
            bad = {**bad, **raw.undecodable.get(col.name, {})}
            if bad:
                bad_by_column[col.name] = bad
        where: dict[int, str] = {}
        if bad_by_column:
            csv_file = file_name.lower().endswith(".csv")
            rows = {i for bad in bad_by_column.values() for i in bad}
            undecodable = {i for bad in raw.undecodable.values() for i in bad}
            for i in rows:
                at = (
                    f"{file_name} line {raw.start + i + 2}"
                    if csv_file
                    else f"{file_name} row {raw.start + i + 1}"
                )
                if i in undecodable:
                    at += f", not valid {self.encoding}: see {ENCODING_SETTING}"
                where[i] = at
        arrays.append(unreadable_column(batch.num_rows, bad_by_column, where))
        return pa.RecordBatch.from_arrays(arrays, schema=batch_schema(table))

    def _typed_batches(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        actual, _ = self._resolve(table)
        for raw in self._raw_batches(table, chunk_rows):
            yield self._typed(table, raw, actual)

    def _iter_key_batches(self, table: Table, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        keys = list(table.primary_key)
        for batch in self._typed_batches(table, chunk_rows):
            yield pa.RecordBatch.from_arrays([batch.column(k) for k in keys], names=keys)

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
