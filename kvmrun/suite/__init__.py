"""`kvmrun test`: a manifest of guests, run in parallel, reported on a terminal and as JUnit XML."""
