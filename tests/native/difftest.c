// SharpVisor differential-test harness: runs x86-64 instruction sequences natively.
//
// Protocol (little-endian, on stdin/stdout):
//   startup: the harness writes the 8-byte magic "SVDIFF01" and the 8-byte value stored at EXIT_SLOT.
//   per case, input:  struct case_in, then code_len code bytes, then patch_count patches
//                     ({u16 offset, u16 length, bytes}) applied to the seeded data window.
//   per case, output: struct case_out, then one 128-byte chunk for every bit set in
//                     changed_chunks (the data window after the run).
// A case runs with the data window at DATA_BASE (read/write, not executable), the code at
// CODE_BASE (read/execute) followed by "jmp [EXIT_SLOT]", and GS based at DATA_BASE.
// Faults are caught with sigaction on an alternate stack and reported with the kernel's
// trap number, error code and CR2 from the signal context.
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#define DATA_BASE 0x10000000UL
#define DATA_SIZE 0x2000UL
#define CODE_BASE 0x20000000UL
#define CODE_SIZE 0x1000UL
#define EXIT_SLOT 0x30000000UL
#define CHUNK 128
#define CHUNKS (DATA_SIZE / CHUNK)
#define MAX_CODE 3000

struct state {
    uint64_t gpr[16];
    uint64_t rip;
    uint64_t rflags;
};

struct case_in {
    uint32_t magic;          // 'CASE'
    uint32_t code_len;
    uint64_t mem_seed;
    uint32_t patch_count;
    uint32_t timeout_ms;
    struct state regs;
    uint8_t fx[512];
};

struct case_out {
    uint32_t magic;          // 'RSLT'
    uint32_t kind;           // 0 completed, 1 signal, 2 timeout
    uint32_t signo;
    uint32_t si_code;
    uint64_t trapno;
    uint64_t err;
    uint64_t cr2;
    uint64_t fault_address;
    struct state regs;
    uint8_t fx[512];
    uint64_t changed_chunks;
};

__attribute__((visibility("hidden"))) struct state g_in, g_out;
__attribute__((visibility("hidden"), aligned(64))) uint8_t g_fx_in[512], g_fx_out[512], g_fx_host[512];
__attribute__((visibility("hidden"))) uint64_t g_host_rsp;
__attribute__((visibility("hidden"))) uint64_t g_code_entry;

void dt_enter(void);
void dt_exit(void);

__asm__(
    ".text\n"
    ".globl dt_enter\n"
    ".type dt_enter,@function\n"
    "dt_enter:\n"
    "  push %rbx\n  push %rbp\n  push %r12\n  push %r13\n  push %r14\n  push %r15\n"
    "  mov %rsp, g_host_rsp(%rip)\n"
    "  fxsave64 g_fx_host(%rip)\n"
    "  fxrstor64 g_fx_in(%rip)\n"
    "  pushq g_in+136(%rip)\n"
    "  popfq\n"
    "  mov g_in+8(%rip), %rcx\n"
    "  mov g_in+16(%rip), %rdx\n"
    "  mov g_in+24(%rip), %rbx\n"
    "  mov g_in+40(%rip), %rbp\n"
    "  mov g_in+48(%rip), %rsi\n"
    "  mov g_in+56(%rip), %rdi\n"
    "  mov g_in+64(%rip), %r8\n"
    "  mov g_in+72(%rip), %r9\n"
    "  mov g_in+80(%rip), %r10\n"
    "  mov g_in+88(%rip), %r11\n"
    "  mov g_in+96(%rip), %r12\n"
    "  mov g_in+104(%rip), %r13\n"
    "  mov g_in+112(%rip), %r14\n"
    "  mov g_in+120(%rip), %r15\n"
    "  mov g_in+32(%rip), %rsp\n"
    "  mov g_in+0(%rip), %rax\n"
    "  jmp *g_code_entry(%rip)\n"
    ".globl dt_exit\n"
    ".type dt_exit,@function\n"
    "dt_exit:\n"
    "  mov %rax, g_out+0(%rip)\n"
    "  mov %rcx, g_out+8(%rip)\n"
    "  mov %rdx, g_out+16(%rip)\n"
    "  mov %rbx, g_out+24(%rip)\n"
    "  mov %rsp, g_out+32(%rip)\n"
    "  mov %rbp, g_out+40(%rip)\n"
    "  mov %rsi, g_out+48(%rip)\n"
    "  mov %rdi, g_out+56(%rip)\n"
    "  mov %r8, g_out+64(%rip)\n"
    "  mov %r9, g_out+72(%rip)\n"
    "  mov %r10, g_out+80(%rip)\n"
    "  mov %r11, g_out+88(%rip)\n"
    "  mov %r12, g_out+96(%rip)\n"
    "  mov %r13, g_out+104(%rip)\n"
    "  mov %r14, g_out+112(%rip)\n"
    "  mov %r15, g_out+120(%rip)\n"
    "  mov g_host_rsp(%rip), %rsp\n"
    "  pushfq\n"
    "  popq g_out+136(%rip)\n"
    "  pushq $2\n"
    "  popfq\n"
    "  fxsave64 g_fx_out(%rip)\n"
    "  fxrstor64 g_fx_host(%rip)\n"
    "  pop %r15\n  pop %r14\n  pop %r13\n  pop %r12\n  pop %rbp\n  pop %rbx\n"
    "  ret\n");

static sigjmp_buf g_jump;
static volatile sig_atomic_t g_in_guest;
static struct case_out g_result;
static uint8_t *g_data;
static uint8_t *g_code;
static uint8_t g_initial[DATA_SIZE];

static void on_signal(int signo, siginfo_t *info, void *context)
{
    if (!g_in_guest) {
        return; // a late timer tick
    }

    ucontext_t *uc = context;
    mcontext_t *mc = &uc->uc_mcontext;
    g_result.kind = signo == SIGALRM ? 2 : 1;
    g_result.signo = (uint32_t)signo;
    g_result.si_code = (uint32_t)info->si_code;
    g_result.fault_address = (uint64_t)info->si_addr;
    g_result.trapno = (uint64_t)mc->gregs[REG_TRAPNO];
    g_result.err = (uint64_t)mc->gregs[REG_ERR];
    g_result.cr2 = (uint64_t)mc->gregs[REG_CR2];
    static const int order[16] = { REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                   REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15 };
    for (int i = 0; i < 16; i++) {
        g_result.regs.gpr[i] = (uint64_t)mc->gregs[order[i]];
    }
    g_result.regs.rip = (uint64_t)mc->gregs[REG_RIP];
    g_result.regs.rflags = (uint64_t)mc->gregs[REG_EFL];
    if (mc->fpregs) {
        memcpy(g_result.fx, mc->fpregs, 512);
    }
    g_in_guest = 0;
    siglongjmp(g_jump, 1);
}

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int read_exact(void *buffer, size_t length)
{
    return fread(buffer, 1, length, stdin) == length;
}

static void die(const char *what)
{
    fprintf(stderr, "difftest: %s\n", what);
    exit(2);
}

static void *map_fixed(uint64_t address, size_t size, int prot)
{
    void *p = mmap((void *)address, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)address) {
        die("cannot map a fixed test page");
    }
    return p;
}

int main(void)
{
    g_data = map_fixed(DATA_BASE, DATA_SIZE, PROT_READ | PROT_WRITE);
    // The code page is read/execute for the case (a store into it faults, as in the emulator's
    // address space: a store into the exit stub would otherwise diverge); the harness writes the
    // code through a second, writable mapping of the same memfd.
    int code_fd = memfd_create("difftest-code", 0);
    if (code_fd < 0 || ftruncate(code_fd, CODE_SIZE) != 0) {
        die("cannot create the code memfd");
    }
    if (mmap((void *)CODE_BASE, CODE_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_FIXED_NOREPLACE, code_fd, 0) != (void *)CODE_BASE) {
        die("cannot map the code page");
    }
    g_code = mmap(NULL, CODE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, code_fd, 0);
    if (g_code == MAP_FAILED) {
        die("cannot map the code page for writing");
    }
    uint64_t *exit_slot = map_fixed(EXIT_SLOT, 0x1000, PROT_READ | PROT_WRITE);
    *exit_slot = (uint64_t)&dt_exit;
    mprotect(exit_slot, 0x1000, PROT_READ);
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, DATA_BASE) != 0) {
        die("arch_prctl(ARCH_SET_GS) failed");
    }

    stack_t alt = { .ss_sp = malloc(1 << 16), .ss_size = 1 << 16, .ss_flags = 0 };
    if (sigaltstack(&alt, NULL) != 0) {
        die("sigaltstack failed");
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    int signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGALRM };
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        sigaction(signals[i], &sa, NULL);
    }

    static char out_buffer[1 << 16];
    setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);
    fwrite("SVDIFF01", 1, 8, stdout);
    fwrite(exit_slot, 8, 1, stdout);
    fflush(stdout);

    static const uint8_t stub[] = { 0xFF, 0x24, 0x25, 0x00, 0x00, 0x00, 0x30 }; // jmp [EXIT_SLOT]
    struct case_in in;
    while (read_exact(&in, sizeof in)) {
        if (in.magic != 0x45534143 || in.code_len > MAX_CODE) {
            die("bad case header");
        }

        memset(g_code, 0xF4, CODE_SIZE);
        if (!read_exact(g_code, in.code_len)) {
            die("short code");
        }
        memcpy(g_code + in.code_len, stub, sizeof stub);

        uint64_t seed = in.mem_seed;
        for (size_t i = 0; i < DATA_SIZE; i += 8) {
            uint64_t v = splitmix(&seed);
            memcpy(g_initial + i, &v, 8);
        }
        for (uint32_t p = 0; p < in.patch_count; p++) {
            uint16_t header[2];
            if (!read_exact(header, sizeof header) || (size_t)header[0] + header[1] > DATA_SIZE) {
                die("bad patch");
            }
            if (!read_exact(g_initial + header[0], header[1])) {
                die("short patch");
            }
        }
        memcpy(g_data, g_initial, DATA_SIZE);

        memset(&g_result, 0, sizeof g_result);
        g_in = in.regs;
        memcpy(g_fx_in, in.fx, 512);
        g_code_entry = CODE_BASE;

        struct itimerval timer = { .it_value = { .tv_sec = 0, .tv_usec = (in.timeout_ms ? in.timeout_ms : 200) * 1000 } };
        setitimer(ITIMER_REAL, &timer, NULL);
        if (sigsetjmp(g_jump, 1) == 0) {
            g_in_guest = 1;
            dt_enter();
            g_in_guest = 0;
            g_result.kind = 0;
            g_result.regs = g_out;
            memcpy(g_result.fx, g_fx_out, 512);
        }
        struct itimerval off = { 0 };
        setitimer(ITIMER_REAL, &off, NULL);
        __asm__ volatile("pushq $2\n popfq" ::: "cc");

        g_result.magic = 0x544C5352;
        uint64_t mask = 0;
        for (size_t c = 0; c < CHUNKS; c++) {
            if (memcmp(g_data + c * CHUNK, g_initial + c * CHUNK, CHUNK) != 0) {
                mask |= 1ULL << c;
            }
        }
        g_result.changed_chunks = mask;
        fwrite(&g_result, sizeof g_result, 1, stdout);
        for (size_t c = 0; c < CHUNKS; c++) {
            if (mask & (1ULL << c)) {
                fwrite(g_data + c * CHUNK, CHUNK, 1, stdout);
            }
        }
        fflush(stdout);
    }
    return 0;
}
