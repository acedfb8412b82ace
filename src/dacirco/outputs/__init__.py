"""Streaming outputs of a job: renditions, containers (MP4, HLS, DASH), presets, file names."""
