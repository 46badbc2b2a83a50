"""The running machine: vCPU threads as state machines, the host loop, kernel absorption."""
