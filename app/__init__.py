"""neuron-atlas: the server, the database, the worker and the command line around `dissect_core`."""
