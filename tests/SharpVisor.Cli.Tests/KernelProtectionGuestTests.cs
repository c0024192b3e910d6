using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SharpVisor.TestSupport;

namespace SharpVisor.Cli.Tests;

/// <summary>
/// Kernel protection against the real kernel (issue 14, docs/security.md): the default guest
/// loads tests/kernels/protect-attack (built for its exact kernel by scripts/build-test-module.sh)
/// through /hook.sh, which tries the attacks one by one. Without protection they succeed — so
/// the module works — and with `--protect kernel,cr-pin,msr-pin` each is refused and reported,
/// the measurement stays the golden one, the guest keeps running, and its quote verifies with
/// the right nonce and key only (not with another nonce, another key or a tampered field). One
/// boot each way, in parallel; each has a scratch disk (/dev/vda) for the DMA attack, a disk read
/// into kernel text.
/// </summary>
public sealed class KernelProtectionGuestTests : IDisposable
{
    // One partial pass over /proc/kallsyms (slow to generate under emulation): sys_call_table
    // is early in .rodata; the module takes kernel text from &vfree itself.
    private const string Hook = """
        ko=/protect_attack.ko
        table=$(grep -m 1 ' sys_call_table$' /proc/kallsyms | cut -d' ' -f1)
        echo "PROTECT-SYMBOLS sys_call_table=$table"
        for a in text-alias cr0-wp syscall-table lstar cr4-smep gdt gdt-tls dma; do
            insmod $ko attack=$a syscall_table=0x$table
            rmmod protect_attack
        done
        insmod $ko attack=exec 2>/dev/null
        echo "PROTECT-ALIVE $(cut -d' ' -f1 /proc/uptime)"
        """;

    private readonly string _directory = Directory.CreateTempSubdirectory("sv-protect-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [DefaultGuestFact]
    public void TheAttackModuleSucceedsUnprotectedAndIsRefusedUnderProtection()
    {
        var files = new Dictionary<string, byte[]> { ["protect_attack.ko"] = File.ReadAllBytes(AttackModule()) };
        string quote = Path.Combine(_directory, "quote.json");
        string keys = Path.Combine(_directory, "keys");
        const string Nonce = "5eed00c0ffee";
        using GuestRun open = GuestRun.Start(_directory, Hook, files, ["--accel", "emulator", "--disk", ScratchDisk("open.img")]);
        using GuestRun protectedRun = GuestRun.Start(_directory, Hook, files,
        [
            "--accel", "emulator", "--disk", ScratchDisk("protected.img"), "--protect", "kernel,cr-pin,msr-pin,measure=5",
            "--attest-quote", quote, "--attest-nonce", Nonce, "--attest-key", keys,
        ]);

        // Unprotected: every attack works (the module is not what fails under protection).
        open.WaitForLine("PROTECT-ALIVE");
        Assert.Equal(0, open.WaitForExit());
        foreach (string attack in new[] { "text-alias", "cr0-wp", "syscall-table", "lstar", "cr4-smep", "gdt", "gdt-tls", "dma", "exec" })
        {
            Assert.Contains(open.Lines, l => l.Contains($"PROTECT-ATTACK {attack} result=succeeded", StringComparison.Ordinal));
        }

        Assert.DoesNotContain("protection", open.StandardError);

        // Protected: each refused and reported, the guest carries on and powers off normally.
        protectedRun.WaitForLine("PROTECT-ALIVE");
        Assert.Equal(0, protectedRun.WaitForExit());
        string[] lines = protectedRun.Lines;
        string stderr = protectedRun.StandardError;
        foreach (string attack in new[] { "text-alias", "cr0-wp", "syscall-table", "lstar", "cr4-smep", "gdt" })
        {
            Assert.Contains(lines, l => l.Contains($"PROTECT-ATTACK {attack} result=refused", StringComparison.Ordinal));
        }

        // The disk read into kernel text: the device refuses the descriptor and fails, so the read
        // never completes; the text byte is unchanged and the guest carries on (the exec attack
        // and PROTECT-ALIVE come after it).
        Assert.Contains(lines, l => l.Contains("PROTECT-ATTACK dma result=refused kernel text unchanged, read never completes (device needs reset)", StringComparison.Ordinal));
        Assert.Contains("is in protected guest memory", stderr);

        // The TLS slots of the locked GDT stay writable (Linux rewrites them on every context switch).
        Assert.Contains(lines, l => l.Contains("PROTECT-ATTACK gdt-tls result=succeeded", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("result=succeeded", StringComparison.Ordinal) && !l.Contains("gdt-tls", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("PROTECT-ATTACK exec calling code", StringComparison.Ordinal));

        // Linux turned on SMEP, SMAP and UMIP on the emulated CPU, so the CR4 pin holds all three.
        Assert.Contains("protection locked (kernel,cr-pin,msr-pin,measure=5,mode=enforce)", stderr);
        Assert.Contains("cr4=300800;", stderr);
        Assert.Equal(2, Count(stderr, "protection violation: kind=kernel-write"));  // text alias, syscall table
        Assert.Equal(2, Count(stderr, "protection violation: kind=cr-pin"));        // CR0.WP, CR4.SMEP
        Assert.Equal(1, Count(stderr, "protection violation: kind=msr-pin"));
        Assert.Equal(1, Count(stderr, "protection violation: kind=gdt"));           // the kernel CS descriptor
        Assert.Equal(1, Count(stderr, "protection violation: kind=kernel-exec"));
        Assert.Equal(1, Count(stderr, "protection violation: kind=dma device"));       // the disk read into text
        Assert.Equal(0, Count(stderr, "action=logged"));
        Assert.Contains("protection: 8 violations", stderr);
        Assert.Contains("measurement matches the golden", stderr);

        // The quote: verifies with its nonce, the host key and the kernel's digest; not with another nonce or key.
        string kernelDigest = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(GuestBootCapability.Kernel)));
        string publicKey = Path.Combine(keys, "attestation-key.pub.pem");
        SharpVisorProcess.Result verified = SharpVisorProcess.Run(["attest", "verify", quote, "--key", publicKey, "--nonce", Nonce, "--expect-kernel", kernelDigest]);
        Assert.True(verified.ExitCode == 0, verified.StandardError);
        Assert.Contains("violations    8", verified.StandardOutput);
        SharpVisorProcess.Result replay = SharpVisorProcess.Run(["attest", "verify", quote, "--key", publicKey, "--nonce", "5eed00c0fffe"]);
        Assert.Equal(1, replay.ExitCode);
        Assert.Contains("nonce", replay.StandardError);
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string otherKey = Path.Combine(_directory, "other.pub.pem");
        File.WriteAllText(otherKey, other.ExportSubjectPublicKeyInfoPem());
        SharpVisorProcess.Result wrongKey = SharpVisorProcess.Run(["attest", "verify", quote, "--key", otherKey, "--nonce", Nonce]);
        Assert.Equal(1, wrongKey.ExitCode);
        Assert.Contains("signature does not verify", wrongKey.StandardError);

        // A tampered field (the violation count set to 0, the signature kept): refused.
        JsonObject signed = JsonNode.Parse(File.ReadAllText(quote))!.AsObject();
        JsonObject payload = JsonNode.Parse(Convert.FromBase64String((string)signed["payload"]!))!.AsObject();
        payload["violations"] = 0;
        signed["payload"] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(payload.ToJsonString()));
        string tampered = Path.Combine(_directory, "tampered.json");
        File.WriteAllText(tampered, signed.ToJsonString());
        SharpVisorProcess.Result altered = SharpVisorProcess.Run(["attest", "verify", tampered, "--key", publicKey, "--nonce", Nonce]);
        Assert.Equal(1, altered.ExitCode);
        Assert.Contains("signature does not verify", altered.StandardError);
    }

    /// <summary>A 1 MiB raw image the dma attack may overwrite the first sector of.</summary>
    private string ScratchDisk(string name)
    {
        string path = Path.Combine(_directory, name);
        using FileStream image = File.Create(path);
        image.SetLength(1 << 20);
        return path;
    }

    private static int Count(string text, string what)
    {
        int count = 0;
        for (int at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    /// <summary>The attack module for the default guest's kernel, which ./test.sh builds (scripts/build-test-module.sh).</summary>
    private static string AttackModule()
    {
        string manifest = Path.Combine(GuestBootCapability.CacheDirectory, "guest", "current", "manifest.txt");
        string release = File.ReadLines(manifest).First(l => l.StartsWith("kernel_release=", StringComparison.Ordinal))["kernel_release=".Length..];
        string ko = Path.Combine(GuestBootCapability.CacheDirectory, "test-modules", release, "protect_attack.ko");
        Assert.True(File.Exists(ko), $"{ko} is missing: run scripts/build-test-module.sh (./test.sh does)");
        return ko;
    }
}
