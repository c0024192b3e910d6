/* A tiny AF_VSOCK client/server for the default guest (busybox has none), linked statically
 * by the vsock test and appended to the initramfs.
 *   vsock-tool connect CID PORT TEXT   send TEXT, half-close, print "VSOCK-REPLY <reply>"
 *   vsock-tool send CID PORT BYTES     send BYTES of a pattern, print "VSOCK-SENT <n>"
 *   vsock-tool listen PORT             print "VSOCK-LISTENING", serve one connection: read a
 *                                      line, answer "echo:<line>", print "VSOCK-SERVED <line>"
 */
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int open_to(unsigned cid, unsigned port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("VSOCK-ERROR connect");
		exit(1);
	}
	return s;
}

static int write_all(int s, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(s, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[65536];
	if (argc == 5 && strcmp(argv[1], "connect") == 0) {
		int s = open_to(atoi(argv[2]), atoi(argv[3]));
		size_t got = 0;
		ssize_t r;
		if (write_all(s, argv[4], strlen(argv[4])) < 0 || write_all(s, "\n", 1) < 0)
			return perror("VSOCK-ERROR write"), 1;
		shutdown(s, SHUT_WR);
		while (got < sizeof buf - 1 && (r = read(s, buf + got, sizeof buf - 1 - got)) > 0)
			got += (size_t)r;
		buf[got] = 0;
		buf[strcspn(buf, "\n")] = 0;
		printf("VSOCK-REPLY %s\n", buf);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "send") == 0) {
		int s = open_to(atoi(argv[2]), atoi(argv[3]));
		long total = atol(argv[4]), sent = 0;
		for (size_t i = 0; i < sizeof buf; i++)
			buf[i] = (char)(i * 7 + 3);
		while (sent < total) {
			size_t n = total - sent < (long)sizeof buf ? (size_t)(total - sent) : sizeof buf;
			if (write_all(s, buf, n) < 0)
				return perror("VSOCK-ERROR write"), 1;
			sent += (long)n;
		}
		close(s);
		printf("VSOCK-SENT %ld\n", sent);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "listen") == 0) {
		struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = atoi(argv[2]) };
		int l = socket(AF_VSOCK, SOCK_STREAM, 0), c;
		size_t got = 0;
		ssize_t r;
		if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0)
			return perror("VSOCK-ERROR listen"), 1;
		printf("VSOCK-LISTENING\n");
		fflush(stdout);
		if ((c = accept(l, NULL, NULL)) < 0)
			return perror("VSOCK-ERROR accept"), 1;
		while (got < sizeof buf - 1 && (r = read(c, buf + got, sizeof buf - 1 - got)) > 0) {
			got += (size_t)r;
			if (memchr(buf, '\n', got))
				break;
		}
		buf[got] = 0;
		buf[strcspn(buf, "\n")] = 0;
		dprintf(c, "echo:%s\n", buf);
		close(c);
		printf("VSOCK-SERVED %s\n", buf);
		return 0;
	}
	fprintf(stderr, "usage: vsock-tool connect CID PORT TEXT | send CID PORT BYTES | listen PORT\n");
	return 2;
}
