"""Reserved for the report part (see the issues)."""
