"""Learning-curve studies: spec, subsets, executors, aggregation and report."""
