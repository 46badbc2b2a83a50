"""kvmrun: boot raw and ELF guests straight on KVM, with the serial port on the terminal."""
__version__ = "0.1.0"
