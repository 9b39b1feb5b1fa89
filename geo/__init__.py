"""Analysis on GeoDataFrames: pure functions in, findings and metrics out (metres)."""
