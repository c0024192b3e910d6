namespace SharpVisor.Machine.Protection;

/// <summary>What a guest tried against its locked kernel (docs/security.md).</summary>
public enum ProtectionViolationKind
{
    /// <summary>A store by a vCPU to a write-protected guest frame (kernel text, read-only data, the IDT).</summary>
    KernelWrite,

    /// <summary>Supervisor-mode execution outside kernel text and the module area.</summary>
    KernelExecute,

    /// <summary>A MOV to CR0/CR4 that clears a pinned bit.</summary>
    ControlRegister,

    /// <summary>A WRMSR that changes a pinned MSR (LSTAR, SYSENTER_EIP) or clears EFER.NXE.</summary>
    ModelSpecificRegister,

    /// <summary>A device (virtio DMA) asked to write into a write-protected frame.</summary>
    DeviceWrite,

    /// <summary>A measurement of the protected state differs from the golden one taken at lock.</summary>
    Measurement,

    /// <summary>
    /// A store that would change a locked GDT descriptor other than the TLS slots (or the TSS busy
    /// bit), or an LGDT that moves the GDT a vCPU had at lock.
    /// </summary>
    DescriptorTable,
}
