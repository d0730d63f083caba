"""Deterministic demo data generator (ERP + CRM) with a record of planted behaviours."""

from pipelines.generator.core import generate_demo

__all__ = ["generate_demo"]
