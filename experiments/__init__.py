"""One config per reproduced paper table, plus the shell entry points (``run_*.sh``)."""
