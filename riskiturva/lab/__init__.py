"""The lab: a fictitious municipal estate of real servers on loopback, with ground truth.

`manifest.toml` describes the estate and the findings each part must raise;
`riskiturva.lab.estate` starts and stops it; `riskiturva.lab.cli` is `riskiturva lab`;
`riskiturva.lab.pytest_plugin` gives tests a session-scoped running lab.
"""
