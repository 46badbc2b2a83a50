"""Image loaders: each turns the bytes of an image into a LoadPlan; plan.py checks and applies it."""
