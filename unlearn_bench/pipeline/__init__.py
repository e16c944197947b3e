"""The run: stages wired together, validation before training, the side process, health checks."""
