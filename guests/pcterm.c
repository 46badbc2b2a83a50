/* The shared console of the PC-platform C guests: see pcterm.h. */
#include "pcterm.h"

void *memcpy(void *dst, const void *src, size_t n)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

/* One `rep movs` either way: the emulated ring 0 of the test host runs a string instruction far
 * faster than the equivalent loop. */
void *memmove(void *dst, const void *src, size_t n)
{
    void *ret = dst;
    if (dst <= src || (const char *)src + n <= (char *)dst) {
        __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    } else {
        char *d = (char *)dst + n - 1;
        const char *s = (const char *)src + n - 1;
        __asm__ volatile("std; rep movsb; cld" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    }
    return ret;
}

void *memset(void *dst, int value, size_t n)
{
    void *ret = dst;
    __asm__ volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(value) : "memory");
    return ret;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] - y[i];
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* --- the VGA terminal ------------------------------------------------------------------------- */

size_t terminal_row, terminal_column;
static uint8_t terminal_color;

static inline uint16_t vga_entry(unsigned char c, uint8_t color)
{
    return (uint16_t)c | (uint16_t)color << 8;
}

static void fill_cells(size_t index, size_t count, uint16_t entry)
{
    uint32_t pair = (uint32_t)entry | (uint32_t)entry << 16;
    volatile uint16_t *cells = VGA_MEMORY + index;
    /* Words in pairs with one `rep stosl` (count is even for whole rows). */
    size_t dwords = count / 2;
    __asm__ volatile("rep stosl" : "+D"(cells), "+c"(dwords) : "a"(pair) : "memory");
    if (count & 1)
        *cells = entry;
}

void terminal_initialize(void)
{
    terminal_row = 0;
    terminal_column = 0;
    terminal_color = vga_entry_color(VGA_LIGHT_GREY, VGA_BLACK);
    fill_cells(0, VGA_WIDTH * VGA_HEIGHT, vga_entry(' ', terminal_color));
}

void terminal_setcolor(uint8_t color)
{
    terminal_color = color;
}

/* Everything moves up a row; the last row is cleared in the current colour. */
static void terminal_scroll(void)
{
    memmove((void *)VGA_MEMORY, (const void *)(VGA_MEMORY + VGA_WIDTH),
            (VGA_HEIGHT - 1) * VGA_WIDTH * sizeof(uint16_t));
    fill_cells((VGA_HEIGHT - 1) * VGA_WIDTH, VGA_WIDTH, vga_entry(' ', terminal_color));
}

static void terminal_newline(void)
{
    terminal_column = 0;
    if (++terminal_row == VGA_HEIGHT) {
        terminal_scroll();
        terminal_row = VGA_HEIGHT - 1;
    }
}

void terminal_putchar(char c)
{
    if (c == '\n') {
        terminal_newline();
        return;
    }
    VGA_MEMORY[terminal_row * VGA_WIDTH + terminal_column] = vga_entry((unsigned char)c, terminal_color);
    if (++terminal_column == VGA_WIDTH)
        terminal_newline();
}

void terminal_write(const char *data, size_t size)
{
    for (size_t i = 0; i < size; i++)
        terminal_putchar(data[i]);
}

void terminal_writestring(const char *data)
{
    terminal_write(data, strlen(data));
}

void terminal_update_cursor(void)
{
    uint16_t position = (uint16_t)(terminal_row * VGA_WIDTH + terminal_column);
    outb(VGA_CRTC_INDEX, CRTC_CURSOR_LOW);
    outb(VGA_CRTC_DATA, (uint8_t)(position & 0xFF));
    outb(VGA_CRTC_INDEX, CRTC_CURSOR_HIGH);
    outb(VGA_CRTC_DATA, (uint8_t)(position >> 8));
}

/* --- COM1 ------------------------------------------------------------------------------------- */

void serial_putchar(char c)
{
    /* LSR bit 5: the transmitter holding register is empty. Bounded: a UART that never says so
     * still gets the byte. */
    for (int spins = 0; spins < 1000 && !(inb(COM1 + 5) & 0x20); spins++)
        ;
    outb(COM1, (uint8_t)c);
}

void serial_writestring(const char *data)
{
    while (*data)
        serial_putchar(*data++);
}

/* --- both ------------------------------------------------------------------------------------- */

int console_to_screen = 1;

void kputc(char c)
{
    if (console_to_screen)
        terminal_putchar(c);
    serial_putchar(c);
}

void kputs(const char *s)
{
    while (*s)
        kputc(*s++);
}

static void put_hex_digits(uint64_t value)
{
    char digits[16];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[value & 0xF];
        value >>= 4;
    } while (value);
    kputs("0x");
    while (n)
        kputc(digits[--n]);
}

void kput_hex(uint32_t value)
{
    put_hex_digits(value);
}

void kput_hex64(uint64_t value)
{
    put_hex_digits(value);
}

void kput_dec(uint32_t value)
{
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n)
        kputc(digits[--n]);
}

void kput_bytes(const void *data, size_t size)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < size; i++) {
        if (bytes[i] >= 0x20 && bytes[i] < 0x7F && bytes[i] != '\\') {
            kputc((char)bytes[i]);
        } else {
            kputs("\\x");
            kputc("0123456789abcdef"[bytes[i] >> 4]);
            kputc("0123456789abcdef"[bytes[i] & 0xF]);
        }
    }
}

void kput_string(const char *s, size_t limit)
{
    size_t n = 0;
    while (n < limit && s[n])
        n++;
    kputc('\'');
    kput_bytes(s, n);
    kputc('\'');
    if (s[n])
        kputs("...");
}

void fail(const char *why, uint32_t value)
{
    terminal_setcolor(vga_entry_color(VGA_WHITE, VGA_RED));
    kputs("FAIL: ");
    kputs(why);
    kputc(' ');
    kput_hex(value);
    kputc('\n');
    outb(EXIT_PORT, FAIL_STATUS);
    halt_forever();
}
