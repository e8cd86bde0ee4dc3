"""Reference tables for the docs site, generated from the code so they cannot drift from it.

`render(markdown)` replaces each `<!-- cli-options: COMMAND -->` marker with that command's option table
(cli_tables.py) and each `<!-- contract: OUTPUT -->` marker with that output's columns (contract.py). The
MkDocs hook docs/hooks/reference.py calls it on every page.
"""

from openpairs.docsgen.render import render

__all__ = ["render"]
