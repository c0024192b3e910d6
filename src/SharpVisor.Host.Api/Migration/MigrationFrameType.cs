namespace SharpVisor.Host.Migration;

/// <summary>The messages of the migration protocol (docs/migration.md).</summary>
public enum MigrationFrameType : byte
{
    /// <summary>Source: magic, protocol version, CPU identity, RAM bytes, domain name.</summary>
    Hello = 1,

    /// <summary>Source: the snapshot's <c>machine</c> section (the configuration).</summary>
    Config = 2,

    /// <summary>Destination: the configuration can be built here; send memory.</summary>
    Accept = 3,

    /// <summary>Destination: one UTF-8 line saying why not (at any point); the source resumes.</summary>
    Refuse = 4,

    /// <summary>Source: pages of one round: count, then per page its index | zero flag and 4 KiB unless zero.</summary>
    Pages = 5,

    /// <summary>Source: the paused machine's state (a snapshot state file without memory).</summary>
    State = 6,

    /// <summary>Destination: the state is loaded; the machine is ready to run.</summary>
    Ready = 7,

    /// <summary>Source: its machine is stopped for good; the destination resumes the guest.</summary>
    Commit = 8,
}
