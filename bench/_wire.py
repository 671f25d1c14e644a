"""How a worker hands its result back: one line on stdout after this marker, then JSON."""

RESULT_MARKER = "BENCH_RESULT "
