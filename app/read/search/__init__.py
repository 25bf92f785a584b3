"""Which units detect X? A typed concept ranked over every layer of a run, and the one search box around it."""
