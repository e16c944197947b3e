"""The one training loop and the fine-tune/unlearn recipes that drive it."""
