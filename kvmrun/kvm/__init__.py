"""The /dev/kvm binding: the only package that talks to the kernel through ioctl and mmap."""
