"""What kvmrun shows people after a run, as rich renderables (rich is imported only here, when shown)."""
