"""kat-lsp: an IDE-side coding agent hosted in a language server (the KAT workflow)."""

__version__ = "0.1.0"
