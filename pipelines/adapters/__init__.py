"""Adapters: turn well-known public exports into source folders that follow the contract.

Each adapter writes a folder of ``<table>.parquet`` files that ``pipelines.extract``
reads like any user's ERP export (``KAM_ERP_URL=<folder>``).

* :mod:`pipelines.adapters.online_retail` - the UCI Online Retail data set (orders only).
"""
