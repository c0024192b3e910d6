/* Times one VMM start for bench/vmm-startup: forks and execs the command after the socket
 * path (argv[1]), then connects to the socket every 0.5 ms and sends GET / until an
 * "HTTP/1.1 200" answer comes; prints "MS KIB CPU_MS": the time from fork to that answer, the
 * child's VmRSS then, and the CPU time all its threads had used by then (from schedstat: on a
 * loaded machine the wall time mostly measures the wait for a core, the CPU time does not).
 * Then kills the child and reaps it. Being C, the poller itself costs little. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int answers(const char *path)
{
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    strncpy(address.sun_path, path, sizeof address.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    int ok = 0;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&address, sizeof address) == 0) {
        static const char request[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        char reply[64] = { 0 };
        if (write(fd, request, sizeof request - 1) > 0 && read(fd, reply, sizeof reply - 1) > 12) {
            ok = strncmp(reply, "HTTP/1.1 200", 12) == 0;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *status = fopen(path, "r");
    while (status && fgets(line, sizeof line, status)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    if (status) {
        fclose(status);
    }
    return kib;
}

static double cpu_ms(pid_t pid)
{
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    double total = 0;
    struct dirent *task;
    while (tasks && (task = readdir(tasks)) != NULL) {
        if (task->d_name[0] == '.') {
            continue;
        }
        char file[320];
        snprintf(file, sizeof file, "%.95s/%.200s/schedstat", path, task->d_name);
        FILE *stat = fopen(file, "r");
        unsigned long long ns = 0;
        if (stat && fscanf(stat, "%llu", &ns) == 1) {
            total += ns / 1e6;
        }
        if (stat) {
            fclose(stat);
        }
    }
    if (tasks) {
        closedir(tasks);
    }
    return total;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: ready SOCKET COMMAND [ARGS...]\n");
        return 2;
    }
    double start = now_ms();
    pid_t child = fork();
    if (child == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    while (!answers(argv[1])) {
        if (waitpid(child, &status, WNOHANG) == child) {
            fprintf(stderr, "ready: the command exited before answering\n");
            return 1;
        }
        if (now_ms() - start > 60000) {
            fprintf(stderr, "ready: no answer within 60 s\n");
            kill(child, SIGKILL);
            return 1;
        }
        usleep(500);
    }
    double elapsed = now_ms() - start;
    long kib = rss_kib(child);
    double cpu = cpu_ms(child);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    printf("%.1f %ld %.1f\n", elapsed, kib, cpu);
    return 0;
}
