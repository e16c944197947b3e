"""Poisoned unlearning requests (`bench.poison`): items that must be kept, slipped into the forget request."""
