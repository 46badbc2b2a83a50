/* The console the PC-platform C guests share (multiboot, multiboot2, PVH): a VGA text terminal in
 * the OSDev "Bare Bones" style (colours, newlines, scrolling when the screen is full) and COM1, with
 * printing of strings, hex and decimal to both. 32-bit, freestanding, no interrupts. */
#ifndef PCTERM_H
#define PCTERM_H

#include <stddef.h>
#include <stdint.h>

#define VGA_WIDTH 80
#define VGA_HEIGHT 25
#define VGA_MEMORY ((volatile uint16_t *)0xB8000)
#define VGA_CRTC_INDEX 0x3D4
#define VGA_CRTC_DATA 0x3D5
#define CRTC_CURSOR_START 0x0A
#define CRTC_CURSOR_END 0x0B
#define CRTC_START_HIGH 0x0C
#define CRTC_START_LOW 0x0D
#define CRTC_CURSOR_HIGH 0x0E
#define CRTC_CURSOR_LOW 0x0F
#define VGA_MISC_OUTPUT_READ 0x3CC
#define VGA_INPUT_STATUS_1 0x3DA

#define COM1 0x3F8
#define EXIT_PORT 0xF4
#define FAIL_STATUS 13              /* what a guest exits with when one of its checks fails */

enum vga_color {
    VGA_BLACK = 0, VGA_BLUE = 1, VGA_GREEN = 2, VGA_CYAN = 3, VGA_RED = 4, VGA_MAGENTA = 5,
    VGA_BROWN = 6, VGA_LIGHT_GREY = 7, VGA_DARK_GREY = 8, VGA_LIGHT_BLUE = 9, VGA_LIGHT_GREEN = 10,
    VGA_LIGHT_CYAN = 11, VGA_LIGHT_RED = 12, VGA_LIGHT_MAGENTA = 13, VGA_YELLOW = 14, VGA_WHITE = 15,
};

static inline uint8_t vga_entry_color(enum vga_color fg, enum vga_color bg)
{
    return (uint8_t)(fg | bg << 4);
}

static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t value)
{
    __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t value)
{
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline __attribute__((noreturn)) void halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

/* The C library pieces the compiler may call on its own (struct copies, loops it recognises). */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int value, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* The VGA terminal. */
extern size_t terminal_row, terminal_column;
void terminal_initialize(void);
void terminal_setcolor(uint8_t color);
void terminal_putchar(char c);
void terminal_write(const char *data, size_t size);
void terminal_writestring(const char *data);
void terminal_update_cursor(void);          /* the hardware cursor to (row, column) */

/* COM1. */
void serial_putchar(char c);
void serial_writestring(const char *data);

/* Both at once: what a guest checks goes to the screen and the serial port; only to the serial
 * port while console_to_screen is 0 (once a guest has set up the screen it wants to leave). */
extern int console_to_screen;
void kputc(char c);
void kputs(const char *s);
void kput_hex(uint32_t value);             /* 0x1f, as Python's hex() */
void kput_hex64(uint64_t value);
void kput_dec(uint32_t value);
void kput_bytes(const void *data, size_t size);  /* printable as is, others as \xNN */
void kput_string(const char *s, size_t limit);   /* 'text', at most `limit` characters */

/* Ends the run with status `status` (the exit port): for a check that failed. */
void fail(const char *why, uint32_t value) __attribute__((noreturn));

#endif
