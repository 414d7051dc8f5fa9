"""User-facing tools: the %comm magic and its report, the command line, status checks."""
