"""Reserved for the hollow part (see the issues)."""
