/*
 * The C peer of SharpVisor's exit-latency benchmark: the same guest bytes (written by
 * SharpVisor.Bench.ExitLatency --write-guest), the same VM setup (irqchip, PIT, TSS and
 * identity map, supported CPUID, 2 MiB of RAM, 32-bit flat protected mode), driven by a bare
 * KVM_RUN loop. Usage: kvm-exit GUEST.bin EXITS.
 * Prints "c exits=N ns_per_exit=X cpu_ns_per_exit=Y": wall-clock time and the vCPU thread's CPU
 * time (which includes the time the kernel spends running the guest), both per exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE (2u << 20)
#define LOAD_ADDRESS 0x1000
#define LOOP_PORT 0x10
#define DONE_PORT 0x11
#define WARMUP_EXITS 20000

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int vcpu_fd;
static struct kvm_run *run;

static long run_guest(long count)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_segment code = { .base = 0, .limit = 0xffffffff, .selector = 0x08, .type = 0xb,
				    .present = 1, .db = 1, .s = 1, .g = 1 };
	struct kvm_segment data = code;
	long loops = 0;

	data.selector = 0x10;
	data.type = 0x3;
	if (ioctl(vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.cr0 = 0x11; /* PE | ET */
	if (ioctl(vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = LOAD_ADDRESS;
	regs.rcx = count;
	regs.rflags = 2;
	if (ioctl(vcpu_fd, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	for (;;) {
		if (ioctl(vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN");
		}
		if (run->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
			exit(1);
		}
		if (run->io.port == LOOP_PORT)
			loops++;
		else if (run->io.port == DONE_PORT)
			return loops;
	}
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s GUEST.bin EXITS\n", argv[0]);
		return 2;
	}
	long exits = atol(argv[2]);

	uint8_t *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap");
	FILE *f = fopen(argv[1], "rb");
	if (!f)
		die(argv[1]);
	size_t size = fread(ram + LOAD_ADDRESS, 1, RAM_SIZE - LOAD_ADDRESS, f);
	fclose(f);
	if (size == 0) {
		fprintf(stderr, "%s is empty\n", argv[1]);
		return 1;
	}

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die("KVM_GET_API_VERSION");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	uint64_t identity_map = 0xfffbc000;
	if (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity_map) < 0)
		die("KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL) < 0)
		die("KVM_SET_TSS_ADDR");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
		die("KVM_CREATE_PIT2");
	struct kvm_userspace_memory_region region = { .slot = 0, .guest_phys_addr = 0,
						      .memory_size = RAM_SIZE, .userspace_addr = (uint64_t)ram };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");

	vcpu_fd = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0)
		die("KVM_CREATE_VCPU");
	int mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	struct {
		struct kvm_cpuid2 header;
		struct kvm_cpuid_entry2 entries[256];
	} cpuid = { .header.nent = 256 };
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0)
		die("KVM_GET_SUPPORTED_CPUID");
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, &cpuid) < 0)
		die("KVM_SET_CPUID2");

	run_guest(WARMUP_EXITS);
	struct timespec start, end, cpu_start, cpu_end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_start);
	long counted = run_guest(exits);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu_end);
	clock_gettime(CLOCK_MONOTONIC, &end);
	if (counted != exits) {
		fprintf(stderr, "expected %ld exits, counted %ld\n", exits, counted);
		return 1;
	}
	double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
	double cpu_ns = (cpu_end.tv_sec - cpu_start.tv_sec) * 1e9 + (cpu_end.tv_nsec - cpu_start.tv_nsec);
	printf("c exits=%ld ns_per_exit=%.0f cpu_ns_per_exit=%.0f\n", exits, ns / exits, cpu_ns / exits);
	return 0;
}
