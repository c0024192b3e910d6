# multiboot-hello: a tiny Multiboot v1 test kernel (GNU as, 32-bit).
#
# Prints to COM1 (polled: waits for LSR bit 5, THR empty, before each byte):
#   Hello from a multiboot kernel
#   cmdline: <the command line>
#   mem_lower: <KiB> KiB, mem_upper: <KiB> KiB
#   modules: <count>
#   module: <string> <size> bytes          (one line per module)
# then writes the byte N from the command-line option exit=N (decimal, default 0) to the
# debug-exit port 0xF4, so the VMM exits with status (N << 1) | 1.
# With the option "loop" (or loop=N) it instead prints "tick <counter>" every N (default
# 100000) iterations of a busy loop, until the ACPI power button is pressed: after each
# tick it polls PM1a_STS (port 0x600, SharpVisor's PM block) and on PWRBTN_STS prints
# "power button: powering off" and enters S5 through PM1a_CNT, as an ACPI OS would —
# unless the command line has "noacpi", for a guest that ignores the button. It also polls
# the i8042 (status port 0x64, data port 0x60) and reads the keys as set 1 scan codes (the
# controller translates by default); on the Ctrl-Alt-Del make sequence (1D 38 E0 53, Ctrl and
# Alt still down when Delete goes down) it prints "ctrl-alt-del: resetting" and pulses the
# reset line with i8042 command 0xFE, as Linux does with reboot=k — unless the command line
# has "nokbd", for a guest that ignores the keyboard. With "wrlstar" it also writes the tick
# counter to IA32_LSTAR after each tick: a kernel-protection test's msr-pin violation once the
# pins are locked (docs/security.md).
#
# Register use: ESI holds the multiboot_info pointer and EDI the command line (0 when
# there is none) for the whole run; the helpers preserve them.

    .set MB_MAGIC,     0x1BADB002
    .set MB_FLAGS,     0x00000003          # bit 0: page-align modules, bit 1: memory info
    .set MB_CHECKSUM,  -(MB_MAGIC + MB_FLAGS)
    .set MB_BOOT_MAGIC, 0x2BADB002
    .set PM1A_STS,     0x600               # SharpVisor's ACPI PM1a event block (FADT)
    .set PM1A_CNT,     0x604               # PM1a control block
    .set PWRBTN_STS,   0x100
    .set SLP_TYP_S5,   (5 << 10)
    .set SLP_EN,       (1 << 13)
    .set COM1,         0x3F8
    .set COM1_LSR,     COM1 + 5
    .set LSR_THRE,     0x20
    .set DEBUG_EXIT,   0xF4
    .set I8042_DATA,   0x60
    .set I8042_STATUS, 0x64            # read: status; write: controller command
    .set I8042_OBF,    0x01            # output buffer full
    .set I8042_AUXDATA, 0x20           # the byte is from the aux (mouse) port
    .set I8042_PULSE_RESET, 0xFE
    .set KBD_POLL_MAX, 32              # bytes read per poll at most
    .set SC_CTRL,      0x1D            # set 1 make codes; break = make | 0x80
    .set SC_ALT,       0x38
    .set SC_EXTENDED,  0xE0
    .set SC_DELETE,    0x53            # after E0
    .set TICK_DEFAULT, 100000          # about 1.2 s per tick on PVM-backed KVM

    .section .multiboot, "a"
    .balign 4
    .long MB_MAGIC, MB_FLAGS, MB_CHECKSUM

    .section .note.GNU-stack, "", @progbits

    .text
    .code32
    .globl _start
_start:
    cli
    cld
    mov $stack_top, %esp
    mov %eax, %ebp                  # boot magic, checked after the greeting
    mov %ebx, %esi                  # multiboot_info

    mov $msg_hello, %eax
    call puts
    cmp $MB_BOOT_MAGIC, %ebp
    je 1f
    mov $msg_bad_magic, %eax
    call puts
    mov $0xFF, %al
    jmp exit
1:
    # Command line (info flag bit 2).
    xor %edi, %edi
    testl $(1 << 2), (%esi)
    jz 2f
    mov 16(%esi), %edi
2:
    mov $msg_cmdline, %eax
    call puts
    test %edi, %edi
    jz 3f
    mov %edi, %eax
    call puts
3:
    call newline

    # Memory (info flag bit 0).
    testl $(1 << 0), (%esi)
    jz 4f
    mov $msg_mem_lower, %eax
    call puts
    mov 4(%esi), %eax
    call putdec
    mov $msg_mem_upper, %eax
    call puts
    mov 8(%esi), %eax
    call putdec
    mov $msg_kib, %eax
    call puts
    call newline
4:
    # Modules (info flag bit 3).
    xor %ebx, %ebx                  # module count
    testl $(1 << 3), (%esi)
    jz 5f
    mov 20(%esi), %ebx
5:
    mov $msg_modules, %eax
    call puts
    mov %ebx, %eax
    call putdec
    call newline
    test %ebx, %ebx
    jz 7f
    mov 24(%esi), %ebp              # struct multiboot_mod_list[]
6:
    mov $msg_module, %eax
    call puts
    mov 8(%ebp), %eax               # string
    call puts
    mov $0x20, %al                  # space
    call putc
    mov 4(%ebp), %eax               # mod_end - mod_start
    sub 0(%ebp), %eax
    call putdec
    mov $msg_bytes, %eax
    call puts
    call newline
    add $16, %ebp
    dec %ebx
    jnz 6b
7:
    # Options.
    test %edi, %edi
    jz exit_zero
    mov $opt_loop, %eax
    call find_option
    test %eax, %eax
    jz 8f
    movb (%eax), %dl                # "loop" must end the word or be "loop=N"
    test %dl, %dl
    jz loop_default
    cmp $0x20, %dl                  # space
    je loop_default
    cmp $0x3D, %dl                  # "="
    jne 8f
    inc %eax
    call parse_decimal
    test %eax, %eax
    jnz loop_forever
loop_default:
    mov $TICK_DEFAULT, %eax
    jmp loop_forever
8:
    mov $opt_exit, %eax
    call find_option
    test %eax, %eax
    jz exit_zero
    call parse_decimal
    jmp exit
exit_zero:
    xor %eax, %eax
exit:
    mov $DEBUG_EXIT, %dx
    outb %al, %dx
halt:
    cli
    hlt
    jmp halt

# Prints "tick <n>" lines forever, EAX iterations of a busy loop apart.
loop_forever:
    mov %eax, %ebx                  # iterations per tick
    xor %ebp, %ebp                  # tick counter
1:
    inc %ebp
    mov $msg_tick, %eax
    call puts
    mov %ebp, %eax
    call putdec
    call newline
    call poll_power_button
    call poll_keyboard
    call poll_lstar
    mov %ebx, %ecx
2:
    dec %ecx
    jnz 2b
    jmp 1b

# poll_power_button: enters S5 when PM1a_STS says the power button was pressed. An absent PM
# block reads as all-ones, which is not a button press. Clobbers EAX, ECX, EDX.
poll_power_button:
    mov $opt_noacpi, %eax
    call find_option
    test %eax, %eax
    jnz 1f
    mov $PM1A_STS, %dx
    inw %dx, %ax
    cmp $0xFFFF, %ax
    je 1f
    test $PWRBTN_STS, %ax
    jz 1f
    mov $msg_power_off, %eax
    call puts
    call newline
    mov $PM1A_CNT, %dx
    mov $(SLP_TYP_S5 | SLP_EN), %ax
    outw %ax, %dx
1:
    ret

# poll_lstar: with "wrlstar", writes the tick counter (EBP) to IA32_LSTAR. Clobbers EAX, ECX, EDX.
poll_lstar:
    mov $opt_wrlstar, %eax
    call find_option
    test %eax, %eax
    jz 1f
    mov $0xC0000082, %ecx           # IA32_LSTAR
    mov %ebp, %eax                  # the tick counter: a new value each time
    xor %edx, %edx
    wrmsr
1:
    ret

# poll_keyboard: reads what the i8042 has (a bounded number of bytes) and resets the machine
# through the controller on Ctrl-Alt-Del. An absent controller reads as all-ones and is
# ignored. Clobbers EAX, ECX, EDX.
poll_keyboard:
    mov $opt_nokbd, %eax
    call find_option
    test %eax, %eax
    jnz 9f
    mov $KBD_POLL_MAX, %ecx
1:
    in $I8042_STATUS, %al
    cmp $0xFF, %al
    je 9f
    test $I8042_OBF, %al
    jz 9f
    mov %al, %ah
    in $I8042_DATA, %al
    test $I8042_AUXDATA, %ah
    jnz 8f                          # a mouse byte: not ours
    cmp $SC_EXTENDED, %al
    jne 2f
    movb $1, kbd_extended
    jmp 8f
2:
    movzbl kbd_extended, %edx
    movb $0, kbd_extended
    mov %al, %ah
    and $0x7F, %ah                  # the key
    shr $7, %al                     # 1 on a break code
    xor $1, %al                     # 1 when the key goes down
    test %edx, %edx
    jnz 4f
    cmp $SC_CTRL, %ah
    jne 3f
    mov %al, kbd_ctrl
    jmp 8f
3:
    cmp $SC_ALT, %ah
    jne 8f
    mov %al, kbd_alt
    jmp 8f
4:
    cmp $SC_DELETE, %ah             # E0 53: Delete (E0 1D, E0 38 are the right Ctrl and Alt)
    jne 5f
    test %al, %al
    jz 8f
    cmpb $0, kbd_ctrl
    je 8f
    cmpb $0, kbd_alt
    je 8f
    mov $msg_cad, %eax
    call puts
    call newline
    mov $I8042_PULSE_RESET, %al
    out %al, $I8042_STATUS
    jmp halt                        # the VMM stops the machine on the reset
5:
    cmp $SC_CTRL, %ah
    jne 6f
    mov %al, kbd_ctrl
    jmp 8f
6:
    cmp $SC_ALT, %ah
    jne 8f
    mov %al, kbd_alt
8:
    dec %ecx
    jnz 1b
9:
    ret

# putc: writes AL to COM1 once the transmitter holding register is empty. Clobbers EDX.
putc:
    push %eax
    mov $COM1_LSR, %dx
1:
    inb %dx, %al
    test $LSR_THRE, %al
    jz 1b
    pop %eax
    mov $COM1, %dx
    outb %al, %dx
    ret

newline:
    mov $0x0A, %al                  # newline
    jmp putc

# puts: writes the NUL-terminated string at EAX. Clobbers EAX, ECX, EDX.
puts:
    mov %eax, %ecx
1:
    movb (%ecx), %al
    test %al, %al
    jz 2f
    call putc
    inc %ecx
    jmp 1b
2:
    ret

# putdec: writes EAX as an unsigned decimal number. Clobbers EAX, ECX, EDX.
putdec:
    push %ebx
    mov $10, %ebx
    xor %ecx, %ecx                  # digits pushed
1:
    xor %edx, %edx
    div %ebx
    add $0x30, %dl                  # "0"
    push %edx
    inc %ecx
    test %eax, %eax
    jnz 1b
2:
    pop %eax
    push %ecx
    call putc
    pop %ecx
    dec %ecx
    jnz 2b
    pop %ebx
    ret

# find_option: looks for the NUL-terminated word prefix at EAX at the start of a
# space-separated word of the command line at EDI. Returns in EAX the address just past the
# match, or 0. Clobbers ECX, EDX.
find_option:
    push %esi
    push %ebx
    mov %eax, %ebx                  # needle
    mov %edi, %esi                  # start of the current word
1:
    xor %ecx, %ecx
2:
    movb (%ebx,%ecx), %dl
    test %dl, %dl
    jz 4f                           # whole needle matched
    cmpb (%esi,%ecx), %dl
    jne 3f
    inc %ecx
    jmp 2b
3:
    movb (%esi), %dl                # skip to just past the next space
    test %dl, %dl
    jz 5f
    inc %esi
    cmp $0x20, %dl                  # space
    jne 3b
    jmp 1b
4:
    lea (%esi,%ecx), %eax
    jmp 6f
5:
    xor %eax, %eax
6:
    pop %ebx
    pop %esi
    ret

# parse_decimal: the unsigned decimal number at EAX (stops at the first non-digit) into EAX.
# Clobbers ECX, EDX.
parse_decimal:
    mov %eax, %ecx
    xor %eax, %eax
1:
    movzbl (%ecx), %edx
    sub $0x30, %edx                 # "0"
    cmp $9, %edx
    ja 2f
    imul $10, %eax, %eax
    add %edx, %eax
    inc %ecx
    jmp 1b
2:
    ret

    .section .rodata
msg_hello:     .asciz "Hello from a multiboot kernel\n"
msg_bad_magic: .asciz "bad boot magic in EAX (not 0x2BADB002)\n"
msg_cmdline:   .asciz "cmdline: "
msg_mem_lower: .asciz "mem_lower: "
msg_mem_upper: .asciz " KiB, mem_upper: "
msg_kib:       .asciz " KiB"
msg_modules:   .asciz "modules: "
msg_module:    .asciz "module: "
msg_bytes:     .asciz " bytes"
msg_tick:      .asciz "tick "
opt_loop:      .asciz "loop"
msg_power_off: .asciz "power button: powering off"
opt_noacpi:    .asciz "noacpi"
msg_cad:       .asciz "ctrl-alt-del: resetting"
opt_nokbd:     .asciz "nokbd"
opt_wrlstar:   .asciz "wrlstar"
opt_exit:      .asciz "exit="

    .section .bss
kbd_ctrl:      .skip 1             # 1 while a Ctrl key is down
kbd_alt:       .skip 1             # 1 while an Alt key is down
kbd_extended:  .skip 1             # 1 after an E0 prefix
    .balign 16
stack_bottom:
    .skip 16384
stack_top:
