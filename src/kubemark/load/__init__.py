"""Reserved for the load part (see the issues)."""
