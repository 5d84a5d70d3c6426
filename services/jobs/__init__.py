"""Batch jobs: state reports, replays as of a date, research exports, RAPIDS exports."""
