"""BIOS services for boot sectors, without a BIOS image: a small ROM of stubs that trap to kvmrun."""
