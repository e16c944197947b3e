"""Evaluations delegated to external harnesses (lm-evaluation-harness for multiple choice)."""
