namespace SharpVisor.Machine;

/// <summary>
/// What <see cref="IInstructionEmulator.EmulateOne"/> did: <see cref="Completed"/> when the
/// instruction ran (or raised an exception that was delivered to the guest) and the state is to be
/// loaded back; otherwise <see cref="Failure"/> says why nothing changed. <see cref="Mnemonic"/>
/// (lower case, e.g. "xgetbv") names the instruction for the exit counters.
/// </summary>
public sealed record InstructionEmulationResult(bool Completed, string Mnemonic, string? Failure = null)
{
    public static InstructionEmulationResult Done(string mnemonic) => new(true, mnemonic);

    public static InstructionEmulationResult Refused(string mnemonic, string why) => new(false, mnemonic, why);
}
