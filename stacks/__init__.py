"""CDK constructs (one per concern) and the thin stacks that compose them."""
