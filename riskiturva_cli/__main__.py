"""`python -m riskiturva_cli`: the same as the `riskiturva` command."""

from riskiturva_cli import main

main(prog_name="riskiturva")
