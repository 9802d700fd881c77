"""Kubernetes rules shared by every part: selectors, patches, quantities, time formats."""
