using System.Text;
using SharpVisor.Host.Firecracker.Mmds;
using SharpVisor.Host.Http;

namespace SharpVisor.Host.Tests.Mmds;

/// <summary>
/// The MMDS data store's rules, as Firecracker's: PUT replaces, PATCH merges (null removes),
/// the size limit holds, and a guest's GET is answered as text (keys, objects with '/'), as
/// JSON on request, and under V2 only with a live token from PUT /latest/api/token.
/// </summary>
public sealed class MmdsDataStoreTests
{
    private const string Metadata = """{"latest": {"meta-data": {"ami-id": "ami-12345678", "reservation-id": "r-fea54097", "network": {"mac": "06:00:00:00:00:01"}}}}""";

    [Fact]
    public void PutReplacesAndPatchMerges()
    {
        var store = new MmdsDataStore();
        store.Put(Encoding.UTF8.GetBytes(Metadata));
        store.Patch("""{"latest": {"meta-data": {"ami-id": "ami-87654321", "reservation-id": null, "new": "x"}}}"""u8);

        Assert.Equal("""{"latest":{"meta-data":{"ami-id":"ami-87654321","network":{"mac":"06:00:00:00:00:01"},"new":"x"}}}""", store.Read());
        store.Put("""{"only": "this"}"""u8);
        Assert.Equal("""{"only":"this"}""", store.Read());
    }

    [Fact]
    public void BadDataIsRefusedAndChangesNothing()
    {
        var store = new MmdsDataStore(sizeLimit: 64);
        store.Put("""{"a": "b"}"""u8);

        Assert.Equal(400, Assert.Throws<ApiException>(() => store.Put("[1, 2]"u8)).StatusCode);
        Assert.Equal(400, Assert.Throws<ApiException>(() => store.Patch("{not json"u8)).StatusCode);
        ApiException tooBig = Assert.Throws<ApiException>(() => store.Patch(Encoding.UTF8.GetBytes($$"""{"big": "{{new string('x', 100)}}"}""")));
        Assert.Equal(413, tooBig.StatusCode);
        Assert.Equal("""{"a":"b"}""", store.Read());
    }

    [Fact]
    public void GuestReadsAreAnsweredAsImdsDoes()
    {
        var store = new MmdsDataStore();
        store.Put(Encoding.UTF8.GetBytes(Metadata));
        Func<string, string?> none = _ => null;

        MmdsAnswer leaf = store.Answer("GET", "/latest/meta-data/ami-id", none);
        MmdsAnswer listing = store.Answer("GET", "/latest/meta-data/", none);
        MmdsAnswer json = store.Answer("GET", "/latest/meta-data/network", name => name == "Accept" ? "application/json" : null);
        MmdsAnswer missing = store.Answer("GET", "/latest/meta-data/nope", none);
        MmdsAnswer post = store.Answer("POST", "/latest/meta-data/ami-id", none);

        Assert.Equal((200, "ami-12345678"), (leaf.StatusCode, leaf.Body));
        Assert.Equal("ami-id\nreservation-id\nnetwork/", listing.Body);
        Assert.Equal(("application/json", """{"mac":"06:00:00:00:00:01"}"""), (json.ContentType, json.Body));
        Assert.Equal(404, missing.StatusCode);
        Assert.Equal(405, post.StatusCode);
    }

    [Fact]
    public void V2NeedsALiveTokenAndV1AcceptsOne()
    {
        long now = 0;
        var store = new MmdsDataStore(nowMs: () => now) { Version = MmdsVersion.V2 };
        store.Put(Encoding.UTF8.GetBytes(Metadata));

        Assert.Equal(401, store.Answer("GET", "/latest/meta-data/ami-id", _ => null).StatusCode);
        Assert.Equal(400, store.Answer("PUT", MmdsDataStore.TokenPath, _ => null).StatusCode);
        Assert.Equal(400, store.Answer("PUT", MmdsDataStore.TokenPath, n => n == MmdsDataStore.TokenTtlHeader ? "21601" : null).StatusCode);
        MmdsAnswer issued = store.Answer("PUT", MmdsDataStore.TokenPath, n => n == MmdsDataStore.TokenTtlHeader ? "60" : null);
        Assert.Equal(200, issued.StatusCode);
        string token = issued.Body;

        Func<string, string?> withToken = n => n == MmdsDataStore.TokenHeader ? token : null;
        Assert.Equal("ami-12345678", store.Answer("GET", "/latest/meta-data/ami-id", withToken).Body);
        Assert.Equal(401, store.Answer("GET", "/latest/meta-data/ami-id", n => n == MmdsDataStore.TokenHeader ? "forged" : null).StatusCode);
        now += 60_000;
        Assert.Equal(401, store.Answer("GET", "/latest/meta-data/ami-id", withToken).StatusCode);

        store.Version = MmdsVersion.V1;
        Assert.Equal("ami-12345678", store.Answer("GET", "/latest/meta-data/ami-id", _ => null).Body);
    }

    [Fact]
    public void AGuestCannotHoardTokens()
    {
        var store = new MmdsDataStore { Version = MmdsVersion.V2 };
        var tokens = new List<string>();
        for (int i = 0; i < MmdsDataStore.MaxTokens + 10; i++)
        {
            tokens.Add(store.Answer("PUT", MmdsDataStore.TokenPath, n => n == MmdsDataStore.TokenTtlHeader ? "600" : null).Body);
        }

        store.Put("""{"k": "v"}"""u8);
        Assert.Equal(401, store.Answer("GET", "/k", n => n == MmdsDataStore.TokenHeader ? tokens[0] : null).StatusCode);
        Assert.Equal("v", store.Answer("GET", "/k", n => n == MmdsDataStore.TokenHeader ? tokens[^1] : null).Body);
    }
}
