"""HTTP conventions every service follows: problem details, staff tokens, request ids, health and metrics."""
