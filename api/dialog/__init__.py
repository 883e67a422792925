"""Dialog manager: explicit state machine over NLU results, templates and order lookup."""
