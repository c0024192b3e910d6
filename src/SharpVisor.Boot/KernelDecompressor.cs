namespace SharpVisor.Boot;

/// <summary>Who turns a bzImage's compressed payload into the running kernel.</summary>
public enum KernelDecompressor
{
    /// <summary>
    /// The VMM (the default): it decompresses the payload (LZ4 or gzip) on the host, loads the ELF's
    /// segments where the guest's decompressor would and enters startup_64, with KASLR off. Payloads
    /// it cannot decode fall back to <see cref="Guest"/>.
    /// </summary>
    Vmm,

    /// <summary>The bzImage's own decompressor, entered at its 64-bit entry: what a PC boot loader does.</summary>
    Guest,
}
