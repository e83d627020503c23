"""Automatic extraction (自动提取): triggers that read HIS facts and raise possible adverse events for review."""
