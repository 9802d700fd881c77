"""Run reports: the run directory model, clusterloader2 PerfData/junit, report.html, run comparison, rich tables."""
