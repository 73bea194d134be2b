"""The protocol, hyperparameter storage and validation."""
