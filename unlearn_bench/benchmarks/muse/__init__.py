"""MUSE (Shi et al. 2024): adapter, records and metrics."""
