"""The Dagster layer: assets, partitions, schedules and sensors that only wire `utl`."""
