/* A multiboot kernel for the VGA text screen: it prints 30 coloured lines, so the 25-row screen
 * scrolls (memmove of the buffer) six times, writes "vgascroll: done" on the last row and puts the
 * hardware cursor after it through the CRTC. The final screen is known:
 *   rows 0-23: "vgascroll: line 07" .. "vgascroll: line 30", line n in colour 1 + n % 15 on black;
 *   row 24: "vgascroll: done", white on blue, the rest of the row blank;
 *   the cursor at row 24, column 15 (location 0x78f), an underline (scan lines 14-15).
 * Then, on COM1 only (the screen stays as it is), what it reads back: the CRTC's cursor location
 * and shape (the shape set with 16-bit writes of index and data to 0x3D4), the misc output register (CRTC at 0x3D4 when bit 0 is set), whether input status 1 shows the
 * vertical retrace coming and going, and the first and last text rows from the buffer. */
#include "pcterm.h"

#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002
#define LINES 30
#define DONE "vgascroll: done"
#define RETRACE_POLLS 5000        /* each read is an exit to the host: keep the wait short */
#define INPUT_STATUS_VRETRACE 0x08

static uint8_t crtc_read(uint8_t index)
{
    outb(VGA_CRTC_INDEX, index);
    return inb(VGA_CRTC_DATA);
}

static void crtc_write(uint8_t index, uint8_t value)
{
    outb(VGA_CRTC_INDEX, index);
    outb(VGA_CRTC_DATA, value);
}

static uint8_t line_color(int n)
{
    return vga_entry_color((enum vga_color)(1 + n % 15), VGA_BLACK);
}

static void put_two_digits(int n)
{
    kputc((char)('0' + n / 10));
    kputc((char)('0' + n % 10));
}

/* Row `row` of the text buffer as the guest reads it back, its trailing blanks cut. */
static void print_row(int row)
{
    char text[VGA_WIDTH];
    int end = 0;
    for (int col = 0; col < VGA_WIDTH; col++) {
        text[col] = (char)(VGA_MEMORY[row * VGA_WIDTH + col] & 0xFF);
        if (text[col] != ' ')
            end = col + 1;
    }
    kputs("row ");
    kput_dec((uint32_t)row);
    kputs(" reads '");
    kput_bytes(text, (size_t)end);
    kputs("' attribute ");
    kput_hex(VGA_MEMORY[row * VGA_WIDTH] >> 8);
    kputc('\n');
}

/* Input status 1 bit 3: the vertical retrace, which a driver waits for before touching the screen. */
static void check_retrace(void)
{
    int set = 0, clear = 0;
    for (int i = 0; i < RETRACE_POLLS && !(set && clear); i++) {
        if (inb(VGA_INPUT_STATUS_1) & INPUT_STATUS_VRETRACE)
            set = 1;
        else
            clear = 1;
    }
    kputs(set && clear ? "retrace comes and goes\n" : set ? "retrace always set\n" : "retrace never set\n");
}

void kernel_main(uint32_t magic, const void *info)
{
    (void)info;
    terminal_initialize();
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC)
        fail("EAX is not the multiboot magic:", magic);
    crtc_write(CRTC_START_HIGH, 0);                 /* the screen shows the buffer from its start */
    crtc_write(CRTC_START_LOW, 0);
    /* The cursor shape as many small kernels set it: one 16-bit write of index (low byte) and
     * data (high byte) to the index port. Start 14 with bit 5 clear: the cursor is shown. */
    outw(VGA_CRTC_INDEX, CRTC_CURSOR_START | 14 << 8);
    outw(VGA_CRTC_INDEX, CRTC_CURSOR_END | 15 << 8);
    for (int n = 1; n <= LINES; n++) {
        terminal_setcolor(line_color(n));
        kputs("vgascroll: line ");
        put_two_digits(n);
        kputc('\n');
    }
    terminal_setcolor(vga_entry_color(VGA_WHITE, VGA_BLUE));
    terminal_writestring(DONE);
    terminal_update_cursor();

    console_to_screen = 0;
    serial_writestring(DONE "\n");
    uint16_t cursor = (uint16_t)(crtc_read(CRTC_CURSOR_HIGH) << 8 | crtc_read(CRTC_CURSOR_LOW));
    kputs("cursor row ");
    kput_dec((uint32_t)terminal_row);
    kputs(" column ");
    kput_dec((uint32_t)terminal_column);
    kputs(", CRTC reads back ");
    kput_hex(cursor);
    kputc('\n');
    kputs("cursor shape, written with 16-bit writes, reads back ");
    kput_dec(crtc_read(CRTC_CURSOR_START));
    kputc('-');
    kput_dec(crtc_read(CRTC_CURSOR_END));
    kputc('\n');
    uint8_t misc = inb(VGA_MISC_OUTPUT_READ);
    kputs("misc output ");
    kput_hex(misc);
    kputs(misc & 1 ? " (CRTC at 0x3d4)\n" : " (CRTC at 0x3b4)\n");
    check_retrace();
    print_row(0);
    print_row(VGA_HEIGHT - 2);
    print_row(VGA_HEIGHT - 1);
}
