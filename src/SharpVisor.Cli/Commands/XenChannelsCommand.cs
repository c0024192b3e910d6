using System.CommandLine;
using System.Globalization;
using System.Text;
using SharpVisor.Host.Domains;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor xen-channels DOMAIN</c>: a Xen domain's event channels to other domains of the
/// daemon (docs/xen.md, "Inter-domain"): its port, the state, the remote domain and port.
/// </summary>
public static class XenChannelsCommand
{
    public static Command Create()
    {
        var domain = new Argument<string>("DOMAIN") { Description = "Domain name or id" };
        var command = new Command("xen-channels", "List a Xen domain's event channels to other domains.") { domain };
        command.SetAction((result, cancel) => Toolstack.RunAsync(async client =>
        {
            XenChannelListing listing = await client.ReadXenChannelsAsync(result.GetValue(domain)!, cancel);
            Console.Write(Format(listing.Channels));
            return ExitCodes.Success;
        }, cancel));
        return command;
    }

    public static string Format(IReadOnlyList<XenChannel> channels)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{"PORT",-6}{"STATE",-13}{"REMOTE-DOMAIN",-15}REMOTE-PORT\n");
        foreach (XenChannel channel in channels)
        {
            string remotePort = channel.RemotePort != 0 ? channel.RemotePort.ToString(CultureInfo.InvariantCulture) : "-";
            text.Append(CultureInfo.InvariantCulture, $"{channel.Port,-6}{channel.State,-13}{channel.RemoteDomain,-15}{remotePort}\n");
        }

        return text.ToString();
    }
}
