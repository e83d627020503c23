"""Printable reports: PDF rendering (the only importer of WeasyPrint)."""
