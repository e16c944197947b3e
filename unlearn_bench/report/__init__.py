"""Tables, plots and the tuning grid built from finished runs' result folders."""
