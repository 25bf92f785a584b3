"""The dissection as shardable stages, engine-free: the probe pass over aligned image chunks, exact merges of their
top-k lists, scoring and evaluation per block of neurons. The single-process path calls them in order (one chunk,
one block); `dissect_core.executors.ray_executor` calls them in parallel on a Ray cluster."""
