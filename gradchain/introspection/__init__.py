"""Looking inside a built optimizer and its state: descriptions, named pieces of state, sizes,
and reading or changing hyperparameters at run time."""
