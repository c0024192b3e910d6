namespace SharpVisor.Cli;

/// <summary>One vCPU's cumulative "hlt" exits and retired instructions (the software accelerator counts both).</summary>
public readonly record struct VcpuActivity(long Halts, long Instructions);
