"""Collectors: one package each, registered as `riskiturva.collectors` entry points."""
