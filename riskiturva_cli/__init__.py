"""The `riskiturva` command line, above everything it drives.

The CLI starts scans (the core), serves the dashboard (`dashboard`) and renders reports, so
it lives in a package of its own that imports all of them and is imported by none: the
core (`riskiturva`) never imports a face, and no face imports the CLI. `docgen` documents
the commands, the settings and the checks from the code (`python -m riskiturva_cli.docgen`).
"""

from riskiturva_cli.commands import main

__all__ = ["main"]
