"""Riskiturva: cybersecurity risk posture for Finnish municipalities."""

__version__ = "0.1.0"
