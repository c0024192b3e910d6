namespace SharpVisor.Emulator.Tests.Differential;

/// <summary>
/// The address space the native harness process gives a test case, as an MMU: the data
/// window (read/write, no execute), the code page (read/execute); everything else
/// unmapped, with kernel-half addresses reported as protection faults the way Linux does.
/// </summary>
internal sealed class UserModeMmu : IMmu
{
    public ulong Translate(X86Cpu cpu, ulong linear, MemoryAccess access)
    {
        if (linear - DiffCase.DataBase < DiffCase.DataSize)
        {
            if (access == MemoryAccess.Execute)
            {
                throw cpu.PageFault(linear, access, present: true);
            }

            return linear;
        }

        if (linear - DiffCase.CodeBase < DiffCase.CodePageSize)
        {
            // Read/execute: a store into the code (and its exit stub) faults on both sides.
            if (access == MemoryAccess.Write)
            {
                throw cpu.PageFault(linear, access, present: true);
            }

            return linear;
        }

        if (linear - DiffCase.ExitSlot < 0x1000)
        {
            // The harness's read-only page holding its exit address.
            if (access != MemoryAccess.Read)
            {
                throw cpu.PageFault(linear, access, present: true);
            }

            return linear;
        }

        // Linux reports user accesses at or above TASK_SIZE_MAX as protection faults.
        throw cpu.PageFault(linear, access, present: linear >= 0x7FFF_FFFF_F000);
    }
}
