namespace SharpVisor.Emulator.Mmu;

/// <summary>The paging mode CR0, CR4 and EFER select (Intel SDM vol. 3, 4.1.1).</summary>
public enum PagingMode : byte
{
    /// <summary>CR0.PG = 0: linear addresses are physical addresses.</summary>
    Disabled,

    /// <summary>32-bit paging: two levels of 4-byte entries, 4 MiB pages under CR4.PSE.</summary>
    Legacy32,

    /// <summary>PAE paging: four PDPTE registers loaded with CR3, then two levels of 8-byte entries.</summary>
    Pae,

    /// <summary>4-level paging (long mode). 5-level paging (CR4.LA57) is not supported.</summary>
    FourLevel,
}
