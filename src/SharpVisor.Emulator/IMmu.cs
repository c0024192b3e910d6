namespace SharpVisor.Emulator;

/// <summary>
/// Linear-to-physical translation: the seam where paging slots in. The CPU caches the
/// result per page in its software TLB, so <see cref="Translate"/> runs only on TLB misses;
/// the CPU calls <see cref="X86Cpu.FlushTlb"/> when CR3/CR0/CR4/EFER change or INVLPG runs.
/// </summary>
public interface IMmu
{
    /// <summary>
    /// Translates the page holding <paramref name="linear"/>, or throws a <see cref="CpuException"/>
    /// (#PF with CR2 and error code) when the access is not permitted.
    /// </summary>
    /// <returns>The physical address of <paramref name="linear"/>.</returns>
    ulong Translate(X86Cpu cpu, ulong linear, MemoryAccess access);
}
