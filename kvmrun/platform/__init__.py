"""What the machine has besides RAM and vCPUs (shared/design.md, "platform/").

needs.py       what a boot protocol asks of the platform (pure: no KVM)
interrupts.py  KVM's in-kernel PICs, IOAPIC, local APICs and PIT; the vCPUs' start under them; IrqLine
halt.py        telling that every vCPU has stopped for good once KVM handles HLT itself
"""
