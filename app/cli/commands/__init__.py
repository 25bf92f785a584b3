"""One module per `neuron-atlas` subcommand; each exposes `register(subparsers)`."""
