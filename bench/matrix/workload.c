/*
 * workload: the CPU and memory workloads of bench/matrix, run inside the guest. Built static by
 * run.sh so the default guest's busybox initramfs can run it from a /hook.sh; the disk and TCP
 * workloads are bench/io/iobench.c.
 *
 *   workload syscall N          N getppid() system calls                  -> ns per call
 *   workload fork N             N fork + execve(/bin/true) + exit + wait  -> us per process
 *   workload pagefault MIB N    N rounds of mmap MIB MiB, touch each page, munmap -> ns per page
 *   workload ctxsw N            N round trips of a byte between two processes through two pipes
 *                               (two context switches each)            -> us per round trip
 *   workload compute N          N steps of an integer kernel (xorshift, multiply, table update)
 *                                                                        -> ns per step
 *
 * Every measurement prints one line: RESULT <name> <value> <unit>, timed with CLOCK_MONOTONIC.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void syscalls(long n)
{
    double start = now();
    for (long i = 0; i < n; i++)
    {
        syscall(SYS_getppid); /* not cached by libc: a real kernel entry every time */
    }
    printf("RESULT syscall %.0f ns/call\n", (now() - start) / n * 1e9);
}

static void forks(long n)
{
    char *argv[] = { "/bin/true", NULL };
    double start = now();
    for (long i = 0; i < n; i++)
    {
        pid_t pid = fork();
        if (pid < 0)
        {
            die("fork");
        }
        if (pid == 0)
        {
            execv(argv[0], argv);
            _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        {
            die("/bin/true");
        }
    }
    printf("RESULT fork-exec %.0f us/process\n", (now() - start) / n * 1e6);
}

static void pagefaults(long mib, long rounds)
{
    long page = sysconf(_SC_PAGESIZE), pages = mib * 1024 * 1024 / page;
    double start = now();
    for (long r = 0; r < rounds; r++)
    {
        volatile char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
        {
            die("mmap");
        }
        for (long i = 0; i < pages; i++)
        {
            p[i * page] = (char)i; /* one fault per page: no MAP_POPULATE, no huge pages (4 KiB default) */
        }
        munmap((void *)p, pages * page);
    }
    printf("RESULT pagefault %.0f ns/page\n", (now() - start) / (pages * rounds) * 1e9);
}

static void ctxsw(long n)
{
    int there[2], back[2];
    char c = 0;
    if (pipe(there) || pipe(back))
    {
        die("pipe");
    }
    pid_t pid = fork();
    if (pid < 0)
    {
        die("fork");
    }
    if (pid == 0)
    {
        for (long i = 0; i < n; i++)
        {
            if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1)
            {
                _exit(1);
            }
        }
        _exit(0);
    }
    double start = now();
    for (long i = 0; i < n; i++)
    {
        if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
        {
            die("pipe round trip");
        }
    }
    double seconds = now() - start;
    waitpid(pid, NULL, 0);
    printf("RESULT ctxsw %.1f us/round-trip\n", seconds / n * 1e6);
}

static void compute(long n)
{
    static uint32_t table[4096];
    uint64_t x = 0x9e3779b97f4a7c15ull, sum = 0;
    double start = now();
    for (long i = 0; i < n; i++)
    {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t slot = (uint32_t)(x >> 52);
        table[slot] = table[slot] * 2654435761u + (uint32_t)x;
        sum += table[(slot + 1) & 4095];
    }
    double seconds = now() - start;
    printf("RESULT compute %.2f ns/step (checksum %llx)\n", seconds / n * 1e9, (unsigned long long)sum);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && !strcmp(argv[1], "syscall"))
        syscalls(atol(argv[2]));
    else if (argc >= 3 && !strcmp(argv[1], "fork"))
        forks(atol(argv[2]));
    else if (argc >= 4 && !strcmp(argv[1], "pagefault"))
        pagefaults(atol(argv[2]), atol(argv[3]));
    else if (argc >= 3 && !strcmp(argv[1], "ctxsw"))
        ctxsw(atol(argv[2]));
    else if (argc >= 3 && !strcmp(argv[1], "compute"))
        compute(atol(argv[2]));
    else
    {
        fprintf(stderr, "usage: workload syscall N | fork N | pagefault MIB N | ctxsw N | compute N\n");
        return 2;
    }
    return 0;
}
