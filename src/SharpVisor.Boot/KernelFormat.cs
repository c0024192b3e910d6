namespace SharpVisor.Boot;

/// <summary>The kernel image formats <see cref="KernelImage.Detect(string)"/> recognises.</summary>
public enum KernelFormat
{
    /// <summary>Linux bzImage, booted through its 64-bit entry point (boot protocol 2.12+).</summary>
    BzImage,

    /// <summary>Uncompressed Linux vmlinux (ELF64), booted at its 64-bit entry like Firecracker does.</summary>
    Vmlinux,

    /// <summary>A Multiboot v1 kernel (ELF32 or a.out-kludge image), entered in 32-bit protected mode.</summary>
    Multiboot,

    /// <summary>A Linux kernel entered at its PVH entry point (Xen's hvm_start_info), from a bzImage or vmlinux.</summary>
    Pvh,

    /// <summary>A Linux kernel built as a Xen PV domain (XEN_ELFNOTE_ENTRY, start_info, direct paging).</summary>
    XenPv,
}
