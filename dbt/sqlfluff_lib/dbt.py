"""dbt's cross-database macros as dbt-duckdb renders them (for sqlfluff only)."""

from __future__ import annotations


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"(date_diff('{datepart}', {first_date}::timestamp, {second_date}::timestamp))"


def dateadd(datepart: str, interval: str, from_date_or_timestamp: str) -> str:
    return f"({from_date_or_timestamp} + cast({interval} as bigint) * interval 1 {datepart})"


def date_trunc(datepart: str, date: str) -> str:
    return f"date_trunc('{datepart}', {date})"
