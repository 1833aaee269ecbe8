"""Collectors: one package per collector, registered through the `riskiturva.collectors` entry points."""
