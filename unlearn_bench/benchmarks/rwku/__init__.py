"""RWKU (Jin et al. 2024): adapter, records, forget corpus, metrics and utility evaluation."""
