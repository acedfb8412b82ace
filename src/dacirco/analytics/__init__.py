"""Analysis of a run's event log: ``dacirco process-logs`` turns it into CSV files (SPEC §6)."""
