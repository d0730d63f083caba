"""Gate: what decides that a batch of raw rows may go on to dbt.

Owns the row-level rules (``row_rules``), the quarantine of bad rows and the ``valid_*``
views dbt reads (``quarantine``), the batch-level gates judged on it (``batch_gates``)
and the day's-revenue band (``revenue_band``). Imports extract and the base modules.
"""
