"""Adverse events: intake, receipts, workflow, corrective actions."""
