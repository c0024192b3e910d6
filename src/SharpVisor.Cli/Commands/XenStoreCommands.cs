using System.CommandLine;
using System.Text;
using SharpVisor.Host.Domains;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// Xen's XenStore tools against a domain of the daemon: <c>xenstore-ls DOMAIN [PATH]</c>,
/// <c>xenstore-read DOMAIN PATH</c>, <c>xenstore-write DOMAIN PATH VALUE</c>,
/// <c>xenstore-rm DOMAIN PATH</c>. A PATH without a leading '/' is relative to the domain's
/// home, /local/domain/ID.
/// </summary>
public static class XenStoreCommands
{
    public static Command List()
    {
        var domain = DomainArgument();
        var path = new Argument<string?>("PATH") { Description = "Where to start (default: the domain's home, /local/domain/ID)", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("xenstore-ls", "List a Xen domain's XenStore tree, as xenstore-ls does.") { domain, path };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            XenStoreListing listing = await client.ReadXenStoreAsync(result.GetValue(domain)!, result.GetValue(path) ?? "", recursive: true, cancel);
            Console.Write(FormatTree(listing.Nodes));
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    public static Command Read()
    {
        var domain = DomainArgument();
        var path = PathArgument();
        var command = new Command("xenstore-read", "Print the value of a XenStore node of a Xen domain.") { domain, path };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            XenStoreListing listing = await client.ReadXenStoreAsync(result.GetValue(domain)!, result.GetValue(path)!, recursive: false, cancel);
            Console.WriteLine(listing.Nodes[0].Value);
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    public static Command Write()
    {
        var domain = DomainArgument();
        var path = PathArgument();
        var value = new Argument<string>("VALUE") { Description = "The value to store" };
        var command = new Command("xenstore-write", "Write a value to a XenStore node of a Xen domain (watches fire).") { domain, path, value };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            await client.WriteXenStoreAsync(result.GetValue(domain)!, result.GetValue(path)!, result.GetValue(value)!, cancel);
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    public static Command Remove()
    {
        var domain = DomainArgument();
        var path = PathArgument();
        var command = new Command("xenstore-rm", "Remove a XenStore node of a Xen domain and everything below it.") { domain, path };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            await client.RemoveXenStoreAsync(result.GetValue(domain)!, result.GetValue(path)!, cancel);
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    /// <summary>xenstore-ls's layout: one node per line, indented one space per level below the first, <c>name = "value"</c>.</summary>
    public static string FormatTree(IReadOnlyList<XenStoreNode> nodes)
    {
        if (nodes.Count == 0)
        {
            return "";
        }

        int baseDepth = Depth(nodes[0].Path);
        var text = new StringBuilder();
        foreach (XenStoreNode node in nodes.Skip(1))
        {
            string name = node.Path[(node.Path.LastIndexOf('/') + 1)..];
            text.Append(' ', Depth(node.Path) - baseDepth - 1).Append(name).Append(" = \"").Append(Escape(node.Value)).Append("\"\n");
        }

        return text.ToString();
    }

    private static int Depth(string path) => path == "/" ? 0 : path.Count(c => c == '/');

    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static Argument<string> DomainArgument() => new("DOMAIN") { Description = "Domain name or id" };

    private static Argument<string> PathArgument() => new("PATH") { Description = "XenStore path (relative: below /local/domain/ID)" };
}
