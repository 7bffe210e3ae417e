"""Model compression environments: pruning and quantization decided one layer at a time."""
