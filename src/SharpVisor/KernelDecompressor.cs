namespace SharpVisor;

/// <summary>Who turns a bzImage's compressed kernel into the running kernel.</summary>
public enum KernelDecompressor
{
    /// <summary>
    /// SharpVisor, on the host (the default): it decodes an LZ4 or gzip payload, loads the kernel and
    /// enters it directly, with KASLR off; other payloads boot through the kernel's own decompressor.
    /// </summary>
    Vmm,

    /// <summary>The kernel's own decompressor, in the guest (slower under the emulator; randomizes the kernel's address).</summary>
    Guest,
}
