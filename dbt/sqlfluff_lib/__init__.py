"""What sqlfluff's Jinja templater needs to render the models as dbt renders them on DuckDB
(pyproject.toml [tool.sqlfluff.templater.jinja] library_path): ``adapter.dispatch``,
``target`` and the cross-database macros ``dbt.datediff`` / ``dbt.dateadd`` /
``dbt.date_trunc``. Lint only; dbt itself never reads this folder."""
