/* A freestanding C guest: the ABI puts the vCPU index, vCPU count and RAM size in RDI, RSI and
 * RDX, which are exactly the first three arguments of the x86-64 SysV calling convention. */
#include <stdint.h>

#define COM1 0x3F8
#define COM1_LSR (COM1 + 5)
#define LSR_THR_EMPTY 0x20

static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static void putc_serial(char c)
{
    while (!(inb(COM1_LSR) & LSR_THR_EMPTY))
        ;
    outb(COM1, (uint8_t)c);
}

static void puts_serial(const char *s)
{
    while (*s)
        putc_serial(*s++);
}

static void put_decimal(uint64_t n)
{
    char digits[20];
    int i = 0;
    do {
        digits[i++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    while (i)
        putc_serial(digits[--i]);
}

void kmain(uint64_t cpu, uint64_t cpus, uint64_t ram_kib)
{
    puts_serial("Hello from C: vCPU ");
    put_decimal(cpu);
    puts_serial(" of ");
    put_decimal(cpus);
    puts_serial(", ");
    put_decimal(ram_kib);
    puts_serial(" KiB of RAM\n");
}

/* The entry: `call` leaves the stack as a C function expects it, and HLT ends the run. */
__asm__(".globl _start\n"
        "_start:\n"
        "    call kmain\n"
        "1:  hlt\n"
        "    jmp 1b\n");
