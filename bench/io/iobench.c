/*
 * iobench: the guest (and host) side of bench/io. Built static by run.sh so the default
 * guest's busybox initramfs can run it from a /hook.sh.
 *
 *   iobench seqwrite DEV MIB      sequential 1 MiB O_DIRECT writes, then fsync
 *   iobench seqread DEV MIB       sequential 1 MiB O_DIRECT reads
 *   iobench randread DEV SECONDS  4 KiB O_DIRECT reads at random aligned offsets, queue depth 1
 *   iobench send IP PORT MIB      TCP stream of MIB MiB to IP:PORT
 *   iobench sink PORT             (host) accept one TCP stream, report its throughput
 *
 * Every measurement prints one line: RESULT <name> <value> <unit>.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#define MIB (1024L * 1024L)

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

static void *aligned(size_t size)
{
    void *p;
    if (posix_memalign(&p, 4096, size) != 0)
        die("posix_memalign");
    memset(p, 0x5A, size);
    return p;
}

static int sequential(const char *dev, long mib, int write_)
{
    int fd = open(dev, (write_ ? O_WRONLY : O_RDONLY) | O_DIRECT);
    if (fd < 0)
        die(dev);
    char *buf = aligned(MIB);
    double start = now();
    for (long i = 0; i < mib; i++) {
        ssize_t n = write_ ? pwrite(fd, buf, MIB, i * MIB) : pread(fd, buf, MIB, i * MIB);
        if (n != MIB)
            die(write_ ? "pwrite" : "pread");
    }
    if (write_ && fsync(fd) != 0)
        die("fsync");
    double seconds = now() - start;
    printf("RESULT %s %.1f MiB/s\n", write_ ? "seq-write-1m" : "seq-read-1m", mib / seconds);
    close(fd);
    return 0;
}

static int randread(const char *dev, double seconds)
{
    int fd = open(dev, O_RDONLY | O_DIRECT);
    if (fd < 0)
        die(dev);
    uint64_t size;
    if (ioctl(fd, BLKGETSIZE64, &size) != 0)
        die("BLKGETSIZE64");
    uint64_t blocks = size / 4096;
    char *buf = aligned(4096);
    uint64_t x = 88172645463325252ULL, ios = 0;
    double start = now(), end = start + seconds, t;
    do {
        for (int i = 0; i < 16; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
            if (pread(fd, buf, 4096, (off_t)(x % blocks) * 4096) != 4096)
                die("pread");
            ios++;
        }
        t = now();
    } while (t < end);
    printf("RESULT rand-read-4k %.0f IOPS %llu requests\n", ios / (t - start), (unsigned long long)ios);
    close(fd);
    return 0;
}

static int sendstream(const char *ip, int port, long mib)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, ip, &a.sin_addr);
    for (int tries = 0; connect(s, (struct sockaddr *)&a, sizeof a) != 0; tries++) {
        if (tries == 100)
            die("connect");
        usleep(100000);
    }
    char *buf = aligned(256 * 1024);
    double start = now();
    for (long sent = 0; sent < mib * MIB;) {
        ssize_t n = write(s, buf, 256 * 1024);
        if (n <= 0)
            die("write");
        sent += n;
    }
    shutdown(s, SHUT_WR);
    char c;
    while (read(s, &c, 1) > 0)
        ; /* the sink closes once it has everything */
    printf("RESULT tcp-guest-to-host %.1f MiB/s\n", mib / (now() - start));
    close(s);
    return 0;
}

static int sink(int port)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0)
        die("bind/listen");
    printf("LISTENING\n");
    fflush(stdout);
    int c = accept(l, NULL, NULL);
    if (c < 0)
        die("accept");
    static char buf[1 << 20];
    long total = 0;
    ssize_t n = read(c, buf, sizeof buf);
    double start = now();
    while (n > 0) {
        total += n;
        n = read(c, buf, sizeof buf);
    }
    double seconds = now() - start;
    close(c);
    printf("RESULT tcp-received %.1f MiB/s %ld bytes\n", total / (double)MIB / seconds, total);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "seqwrite"))
        return sequential(argv[2], atol(argv[3]), 1);
    if (argc >= 4 && !strcmp(argv[1], "seqread"))
        return sequential(argv[2], atol(argv[3]), 0);
    if (argc >= 4 && !strcmp(argv[1], "randread"))
        return randread(argv[2], atof(argv[3]));
    if (argc >= 5 && !strcmp(argv[1], "send"))
        return sendstream(argv[2], atoi(argv[3]), atol(argv[4]));
    if (argc >= 3 && !strcmp(argv[1], "sink"))
        return sink(atoi(argv[2]));
    fprintf(stderr, "usage: iobench seqwrite|seqread DEV MIB | randread DEV SECONDS | send IP PORT MIB | sink PORT\n");
    return 2;
}
