"""kubemark: scalability testing of Kubernetes control planes with hollow nodes."""

__version__ = "0.1.0"
