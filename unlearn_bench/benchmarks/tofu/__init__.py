"""TOFU (Maini et al. 2024): adapter, records, metrics and the TOFU-family QA evaluation."""
