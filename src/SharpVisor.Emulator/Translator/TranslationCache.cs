using System.Diagnostics;

namespace SharpVisor.Emulator.Translator;

/// <summary>
/// The process-wide tier-1 code cache: compiles blocks (on a background thread for hot blocks,
/// inline for <see cref="ExecutionTier.Always"/>), keeps at most
/// <see cref="TranslatorSettings.CacheCapacity"/> translations (the oldest are evicted: their
/// block goes back to the interpreter and may heat up again) and counts what it did.
/// Compiled code is a collectible <see cref="System.Reflection.Emit.DynamicMethod"/>: an evicted
/// or invalidated block's code is reclaimed once nothing references it.
/// </summary>
internal static class TranslationCache
{
    private static readonly object s_lock = new();
    private static readonly Queue<Block> s_resident = new();
    private static readonly Queue<Block> s_pending = new();
    private static Thread? s_worker;
    private static long s_compiled;
    private static long s_evicted;
    private static long s_jitTicks;
    private static long s_ilBytes;
    private static long s_failed;
    private static long s_regionMembers;

    /// <summary>Blocks compiled into another block's method as region members (beyond the entries), since the process started.</summary>
    internal static long RegionMembers => Interlocked.Read(ref s_regionMembers);

    public static TranslatorStatistics Statistics
    {
        get
        {
            lock (s_lock)
            {
                return new TranslatorStatistics(
                    s_compiled, s_evicted, s_failed, s_resident.Count, s_ilBytes,
                    TimeSpan.FromTicks(s_jitTicks * TimeSpan.TicksPerSecond / Stopwatch.Frequency));
            }
        }
    }

    /// <summary>Queues a hot block for the background compiler.</summary>
    public static void Enqueue(Block block)
    {
        lock (s_lock)
        {
            s_pending.Enqueue(block);
            if (s_worker is null)
            {
                s_worker = new Thread(Work) { IsBackground = true, Name = "tier1-compiler", Priority = ThreadPriority.BelowNormal };
                s_worker.Start();
            }

            Monitor.Pulse(s_lock);
        }
    }

    /// <summary>Compiles <paramref name="block"/> on the calling thread and installs the code.</summary>
    public static void CompileNow(Block block)
    {
        long start = ThreadCpuClock.Now();
        TranslatedBlock? code = null;
        int ilBytes = 0;
        int members = 1;
        try
        {
            code = BlockTranslator.Translate(block, block.RegionQueued, out ilBytes, out members);
        }
        catch (Exception)
        {
            // Whatever went wrong is a translator bug (the guest chose nothing but the block's
            // instructions): the block stays with the interpreter and the failure is counted,
            // rather than the compiler thread taking the process down.
            Interlocked.Increment(ref s_failed);
        }

        long elapsed = ThreadCpuClock.Now() - start;
        lock (s_lock)
        {
            s_jitTicks += elapsed;
            if (code is null || !block.Valid)
            {
                return;
            }

            s_compiled++;
            s_regionMembers += members - 1;
            s_ilBytes += ilBytes - block.TranslatedIlBytes;
            block.TranslatedIlBytes = ilBytes;
            bool resident = block.Translated is not null; // compiled again, with its region
            Volatile.Write(ref block.Translated, code);
            if (!resident)
            {
                s_resident.Enqueue(block);
            }

            while (s_resident.Count > TranslatorSettings.CacheCapacity)
            {
                Block old = s_resident.Dequeue();
                s_ilBytes -= old.TranslatedIlBytes;
                old.TranslatedIlBytes = 0;
                Volatile.Write(ref old.Translated, null);
                old.Heat = 0;
                old.TranslationQueued = false;
                old.RegionQueued = false;
                s_evicted++;
            }
        }
    }

    private static void Work()
    {
        while (true)
        {
            Block block;
            lock (s_lock)
            {
                while (s_pending.Count == 0)
                {
                    Monitor.Wait(s_lock);
                }

                block = s_pending.Dequeue();
            }

            if (block.Valid && (block.Translated is null || block.RegionQueued))
            {
                CompileNow(block);
            }
        }
    }
}
