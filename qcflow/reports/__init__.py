"""Reports: the event analysis with small-cell suppression, the under-reporting detector, charts,
CSV/XLSX exports, the monthly bulletin, and PDF rendering (pdf.py, the only importer of WeasyPrint)."""
