"""The self-contained HTML report and the console summary."""
