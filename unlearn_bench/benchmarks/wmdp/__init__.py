"""WMDP (Li et al. 2024): adapter, records, and the offline lm-eval tasks of WMDP and MMLU."""
