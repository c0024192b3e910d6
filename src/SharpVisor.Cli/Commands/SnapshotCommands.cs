using System.CommandLine;
using SharpVisor.Host.Daemon;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor save</c>, <c>restore</c> and <c>snapshot</c> (Xen's xl save/restore): FILE is the
/// state file, FILE.mem the memory file beside it (docs/snapshot.md).
/// </summary>
public static class SnapshotCommands
{
    public static Command Save()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "Domain name or id" };
        var file = new Argument<string>("FILE") { Description = "State file to write (the memory goes to FILE.mem)" };
        var keep = new Option<bool>("--keep", "-c") { Description = "Keep the domain running after saving (default: destroy it)" };
        var command = new Command("save", "Pause a domain, write its snapshot, and destroy it unless --keep.") { domain, file, keep };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            string path = Path.GetFullPath(result.GetValue(file)!);
            await client.SaveAsync(result.GetValue(domain)!, path, result.GetValue(keep), cancel);
            Console.WriteLine($"domain {result.GetValue(domain)} saved to {path} (memory {path}.mem){(result.GetValue(keep) ? "; it runs on" : "")}");
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    public static Command Restore()
    {
        var file = new Argument<string>("FILE") { Description = "State file written by save or snapshot (FILE.mem beside it)" };
        var name = new Option<string?>("--name", "-n") { Description = "Name of the restored domain (default: domain-ID)" };
        var baseFile = new Option<string?>("--base") { Description = "For a diff snapshot: the state file of the full snapshot it was taken after (BASE.mem beside it; left unchanged)" };
        var command = new Command("restore", "Create a domain from a snapshot; it continues where it was saved.") { file, name, baseFile };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            string? basePath = result.GetValue(baseFile) is { } b ? Path.GetFullPath(b) : null;
            DomainInfo info = await client.RestoreAsync(Path.GetFullPath(result.GetValue(file)!), result.GetValue(name), cancel, basePath);
            Console.WriteLine($"restored domain {info.Name} (id {info.Id}): {info.Vcpus} vCPU(s), {info.MemoryMib} MiB, {info.Accelerator}");
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    /// <summary><c>sharpvisor snapshot-rebase</c>: Firecracker's rebase-snap for SharpVisor's files, run here without a daemon.</summary>
    public static Command Rebase()
    {
        var baseMemory = new Argument<string>("BASE_MEM") { Description = "The full snapshot's memory file: the diff's pages are written into it" };
        var diffState = new Argument<string>("DIFF_STATE") { Description = "The diff snapshot's state file (it lists the diff's pages)" };
        var diffMemory = new Option<string?>("--diff-mem") { Description = "The diff's memory file (default: DIFF_STATE.mem)" };
        var command = new Command("snapshot-rebase", "Lay a diff snapshot's memory over its base's memory file in place (as Firecracker's rebase-snap); PUT /snapshot/load then takes the diff's state file with that memory file.") { baseMemory, diffState, diffMemory };
        command.SetAction(result =>
        {
            string state = result.GetValue(diffState)!;
            try
            {
                int pages = SharpVisor.Host.Vmm.SnapshotMemorySection.Rebase(result.GetValue(baseMemory)!, state, result.GetValue(diffMemory) ?? state + ".mem");
                Console.WriteLine($"{pages} pages of {state} laid over {result.GetValue(baseMemory)}");
                return ExitCodes.Success;
            }
            catch (SharpVisor.Machine.Snapshots.SnapshotException e)
            {
                Console.Error.WriteLine($"sharpvisor: error: {e.Message}");
                return ExitCodes.Error;
            }
        });
        return command;
    }

    public static Command Snapshot()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "Domain name or id" };
        var file = new Argument<string>("FILE") { Description = "State file to write (the memory goes to FILE.mem)" };
        var diff = new Option<bool>("--diff") { Description = "Only the memory pages changed since the domain's previous snapshot" };
        var command = new Command("snapshot", "Write a snapshot of a domain; it keeps running.") { domain, file, diff };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            string path = Path.GetFullPath(result.GetValue(file)!);
            await client.SnapshotAsync(result.GetValue(domain)!, path, result.GetValue(diff), cancel);
            Console.WriteLine($"domain {result.GetValue(domain)}: {(result.GetValue(diff) ? "diff " : "")}snapshot written to {path} (memory {path}.mem)");
            return ExitCodes.Success;
        }, cancel));
        return command;
    }
}
