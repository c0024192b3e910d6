using SharpVisor.Emulator.Platform;

namespace SharpVisor.Emulator.Tests.Platform;

/// <summary>Two vCPU threads and a device thread hammering the interrupt path at once: no deadlock, nothing lost.</summary>
public class ConcurrencyTests
{
    [Fact]
    public void IpisLevelInterruptsAndEoisRaceWithoutDeadlockOrLoss()
    {
        const int Rounds = 20_000;
        var chip = new SoftwareIrqChip(2, new PlatformTimeBase(new ManualTimeProvider()));
        LocalApic[] cpus = [chip.GetLocalApic(0), chip.GetLocalApic(1)];
        foreach (LocalApic cpu in cpus)
        {
            cpu.SoftwareEnable();
            cpu.WriteRegister(ApicRegister.LvtLint0, LocalApic.LvtMasked);
        }

        // GSI 17 level-triggered to CPU 1.
        chip.IoApic.Write(0, BitConverter.GetBytes(IoApic.RegisterRedirectionBase + 35));
        chip.IoApic.Write(0x10, BitConverter.GetBytes(1u << 24));
        chip.IoApic.Write(0, BitConverter.GetBytes(IoApic.RegisterRedirectionBase + 34));
        chip.IoApic.Write(0x10, BitConverter.GetBytes(0x71u | (uint)IoApic.EntryLevelTriggered));

        int[] ipisTaken = new int[2];
        int levelTaken = 0;
        int doneSending = 0;
        int[] progress = new int[3];
        Exception? failure = null;

        void HandleInterrupts(LocalApic self, int id)
        {
            while (self.TryTakeInterrupt(out int vector))
            {
                if (vector == 0xE0)
                {
                    ipisTaken[id]++;
                }
                else if (vector == 0x71)
                {
                    Interlocked.Increment(ref levelTaken);
                    chip.SetIrqLevel(17, false); // the handler quiets the device before EOI
                }

                self.EndOfInterrupt();
            }
        }

        void Vcpu(int id)
        {
            try
            {
                LocalApic self = cpus[id];
                LocalApic other = cpus[1 - id];
                for (int i = 0; i < Rounds; i++)
                {
                    progress[id] = i;
                    self.SendIpi(other.Id, 0x4000 | 0xE0);
                    HandleInterrupts(self, id);
                }

                // Drain what the other CPU and the device sent last.
                Interlocked.Increment(ref doneSending);
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while ((Volatile.Read(ref doneSending) < 3 || self.HasPendingEvents) && DateTime.UtcNow < deadline)
                {
                    HandleInterrupts(self, id);
                    Thread.Yield();
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        }

        var device = new Thread(() =>
        {
            for (int i = 0; i < Rounds && failure is null; i++)
            {
                progress[2] = i;
                chip.SetIrqLevel(17, true);
                Thread.SpinWait(20);
            }

            Interlocked.Increment(ref doneSending);
        });
        var threads = new[] { new Thread(() => Vcpu(0)), new Thread(() => Vcpu(1)), device };
        foreach (Thread t in threads)
        {
            t.Start();
        }

        foreach (Thread t in threads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(20)), $"a thread is stuck: progress {progress[0]} {progress[1]} {progress[2]} done {doneSending}");
        }

        Assert.Null(failure);

        // Fixed IPIs to a CPU that already has the vector pending coalesce, so count at least one and at most all.
        Assert.InRange(ipisTaken[0], 1, Rounds);
        Assert.InRange(ipisTaken[1], 1, Rounds);
        Assert.True(levelTaken > 0);
        Assert.Equal(0UL, chip.IoApic.GetRedirectionEntry(17) & IoApic.EntryRemoteIrr);
    }
}
