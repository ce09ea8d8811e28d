"""Orchestration: plan what is missing or stale, then run load → pure transform → write per partition."""
