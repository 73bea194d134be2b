"""Working with other libraries' artefacts: resuming an Optax optimizer state with gradchain."""
