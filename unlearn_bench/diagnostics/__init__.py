"""Removal or suppression? The diagnose stage (`stage.py`), its attacks (one module each), its settings
(`settings.py`), the knowledge share and its interval (`share.py`) and the verdict (`verdict.py`)."""
