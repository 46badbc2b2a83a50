"""Emulated devices: pure state machines driven through the IoBus, testable without a VM."""
