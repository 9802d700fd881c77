"""Tests of kubemark.client."""
