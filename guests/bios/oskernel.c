/* A kernel as the os-tutorial builds one: 32-bit C, linked at 0x1000 as a flat binary, loaded by a
 * boot sector (osboot.asm) and entered in protected mode with interrupts off. It writes to the VGA
 * text buffer and to COM1, and returns 0 (the exit status) when the text it wrote reads back. */
#include <stdint.h>

#define VGA ((volatile uint16_t *)0xB8000)
#define COLUMNS 80
#define COM1 0x3F8

static void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static const char message[] = "Hello from the kernel";
int row = 5;                                  /* .data: set by the image, not by code */

static void print_at(const char *text, int at_row, uint8_t attribute)
{
    for (int i = 0; text[i]; i++)
        VGA[at_row * COLUMNS + i] = (uint16_t)(attribute << 8 | (uint8_t)text[i]);
}

static void serial_print(const char *text)
{
    for (; *text; text++)
        outb(COM1, (uint8_t)*text);
}

int kernel_main(void)
{
    print_at(message, row, 0x1F);
    serial_print(message);
    serial_print("\n");
    for (int i = 0; message[i]; i++)
        if ((VGA[row * COLUMNS + i] & 0xFF) != (uint8_t)message[i])
            return 13;
    return 0;
}
