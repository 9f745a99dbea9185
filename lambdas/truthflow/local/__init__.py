"""The offline runner: embedded AWS, simulated or replayed Ground Truth workforce, sample jobs and the report."""
