"""Measurement statistics: percentiles and latency series, SLO thresholds and verdicts, clock-skew checks."""
