"""Reserved for the measure part (see the issues)."""
