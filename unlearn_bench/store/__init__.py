"""What a run keeps on disk: the stage cache and its keys, data fingerprints, results, resume, provenance."""
