"""Seeing inside a running guest: the gdb remote stub, and the page walk it reads memory through.

The protocol side is pure and tested without KVM: packets.py (framing), server.py (gdb's remote serial
protocol over the abstract Target of target.py), registers.py (the layouts and target descriptions gdb
gets per CPU mode)."""
