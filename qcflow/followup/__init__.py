"""Follow-up: protocols, plans, tasks, attempts, outcomes, the daily queue and the task generator."""
