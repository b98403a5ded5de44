"""`python -m kat_lsp` runs the command line interface."""

from kat_lsp.cli import main

raise SystemExit(main())
