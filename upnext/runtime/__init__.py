"""The serving process: the runtime, its loops, the executors, the process pool, drain."""
