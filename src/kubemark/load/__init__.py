"""Load generation: clusterloader2-style test configs (config.py), templates (templates.py), tuning sets (tuning.py)."""
