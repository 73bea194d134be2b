"""Tools around training: the learning-rate range test and plots of schedules and its curve."""
