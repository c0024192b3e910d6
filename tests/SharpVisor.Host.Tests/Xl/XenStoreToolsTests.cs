using SharpVisor.Cli.Commands;
using SharpVisor.Host.Domains;
using SharpVisor.Host.Http;
using SharpVisor.Xen;

namespace SharpVisor.Host.Tests.Xl;

/// <summary>What xenstore-ls/read/write/rm do to a domain's store, and how the listing prints.</summary>
public sealed class XenStoreToolsTests
{
    [Fact]
    public void TheToolsReachTheDomainsTreeWithRelativeAndAbsolutePaths()
    {
        var store = new XenStore();
        XenStoreLayout.SeedDomain(store, 3, "web", 256 * 1024, 1);
        var tools = new DomainXenStore(store, 3);

        Assert.Equal("web", tools.Read("name"));
        Assert.Equal("web", tools.Read("/local/domain/3/name"));
        tools.Write("data/greeting", "hello \"world\"");
        Assert.Equal("hello \"world\"", tools.Read("/local/domain/3/data/greeting"));
        tools.SetMemoryTarget(128);
        Assert.Equal("131072", tools.Read("memory/target"));

        IReadOnlyList<XenStoreNode> nodes = tools.List("data");
        Assert.Equal(["/local/domain/3/data", "/local/domain/3/data/greeting"], nodes.Select(n => n.Path));
        Assert.Contains(tools.List("/local/domain/3"), n => n.Path == "/local/domain/3/memory/target");

        tools.Remove("data");
        ApiException missing = Assert.Throws<ApiException>(() => tools.Read("data/greeting"));
        Assert.Equal(404, missing.StatusCode);
        Assert.Contains("/local/domain/3/data/greeting", missing.Message);
        Assert.Equal(400, Assert.Throws<ApiException>(() => tools.Read("")).StatusCode);
    }

    [Fact]
    public void TheListingIsIndentedLikeXenstoreLs()
    {
        XenStoreNode[] nodes =
        [
            new() { Path = "/local/domain/3", Value = "" },
            new() { Path = "/local/domain/3/name", Value = "web" },
            new() { Path = "/local/domain/3/memory", Value = "" },
            new() { Path = "/local/domain/3/memory/target", Value = "131072" },
            new() { Path = "/local/domain/3/note", Value = "say \"hi\"" },
        ];

        Assert.Equal("name = \"web\"\nmemory = \"\"\n target = \"131072\"\nnote = \"say \\\"hi\\\"\"\n", XenStoreCommands.FormatTree(nodes));
    }
}
