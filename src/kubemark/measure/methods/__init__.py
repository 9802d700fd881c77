"""One module per measurement Method of a test config: each adapts the logic in `kubemark.measure` (trackers,
barriers, samplers) to the `Measurement` lifecycle. `kubemark.measure.registry` lists them by name."""
