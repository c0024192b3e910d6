/* The floor for bench/vmm-startup: the least a process can do to serve the VMM API's first
 * answer. Binds the Unix socket given as argv[1], then answers every connection's request
 * with a fixed GET / body, like Firecracker's instance info. No parsing: it is a lower bound. */
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2 || strlen(argv[1]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        return 2;
    }
    static const char answer[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 76\r\n\r\n"
        "{\"id\":\"floor\",\"state\":\"Not started\",\"vmm_version\":\"0\",\"app_name\":\"floor\"}  ";
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    strcpy(address.sun_path, argv[1]);
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 16) != 0) {
        return 1;
    }
    for (;;) {
        int connection = accept(listener, NULL, NULL);
        if (connection < 0) {
            continue;
        }
        char request[4096];
        if (read(connection, request, sizeof request) > 0) {
            (void)!write(connection, answer, sizeof answer - 1);
        }
        close(connection);
    }
}
