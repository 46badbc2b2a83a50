"""Seeing inside a running guest: the gdb remote stub, and the page walk it reads memory through."""
