"""The case-learning library (典型案例): de-identified lessons written from closed cases.

When a case closes, the quality office may write a lesson — what happened, why, what changed — which the scrubber
checks for names, record numbers and other identifiers and a second person checks before it is published. Staff
browse and search the published lessons (Chinese full-text search on SQLite and PostgreSQL alike: search), filter
them by category and department; the monthly bulletin carries the month's lessons. A lesson never links back to its
case for a reader who may not open the case.

models · workflow (draft → in review → published → withdrawn) · search (the term index) · services · queries ·
schemas · api · views.
"""
