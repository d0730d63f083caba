"""Framework-free parts of the KAM pipeline (never imports dagster)."""
