namespace SharpVisor.Memory;

/// <summary>
/// Told about every write to guest memory that does not come from a guest CPU — device DMA, the
/// VMM — after the bytes are in place, so an accelerator that caches something derived from guest
/// memory (the emulator's decoded blocks and shadow page tables) can drop what became stale.
/// Called from any thread; must be cheap when nothing is cached for the range.
/// </summary>
public interface IExternalWriteObserver
{
    void OnExternalWrite(ulong address, ulong length);
}
