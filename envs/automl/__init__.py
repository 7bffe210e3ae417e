"""AutoML environments: a search over configurations, and the control of a running training."""
