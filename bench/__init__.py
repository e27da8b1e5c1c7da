"""civicflow's benchmarks, one module each: run them from the repository root as `python -m bench.<name>`.

What they share (options, throwaway databases, interleaved timing, bare SpiffWorkflow) is in bench.harness;
what each measures, and its figures, are in bench/README.md.
"""
