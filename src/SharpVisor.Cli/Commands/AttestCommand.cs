using System.CommandLine;
using SharpVisor.Security;

namespace SharpVisor.Cli.Commands;

/// <summary>
/// <c>sharpvisor attest verify QUOTE --key PUB [--nonce HEX] [--expect-kernel DIGEST]</c>: checks a
/// quote's signature with the host's public key, then its nonce, kernel digest and measurements
/// (docs/security.md). Exit 0 and the fields when it verifies; 1 and the reason when not.
/// </summary>
public static class AttestCommand
{
    public static Command Create()
    {
        var quote = new Argument<string>("QUOTE") { Description = "The quote file (JSON)" };
        var key = new Option<string>("--key") { Description = "The host's public key (PEM), attestation-key.pub.pem", Required = true };
        var nonce = new Option<string?>("--nonce") { Description = "The nonce the quote must carry (hex)" };
        var kernel = new Option<string?>("--expect-kernel") { Description = "The SHA-256 the booted kernel image must have (hex)" };
        var verify = new Command("verify", "Verify an attestation quote") { quote, key, nonce, kernel };
        verify.SetAction(result => Verify(result.GetValue(quote)!, result.GetValue(key)!, result.GetValue(nonce), result.GetValue(kernel)));
        var domain = new Argument<string?>("DOMAIN") { Description = "A running protected domain: get a quote for --nonce through the daemon", Arity = ArgumentArity.ZeroOrOne };
        var quoteNonce = new Option<string?>("--nonce") { Description = "The verifier's challenge (hex, 1-64 bytes)" };
        var output = new Option<string?>("--output", "-o") { Description = "Write the quote to this file (default: standard output)" };
        var attest = new Command("attest", "Remote attestation of a protected domain's kernel: `attest DOMAIN --nonce HEX`, `attest verify QUOTE ...`") { verify, domain, quoteNonce, output };
        attest.SetAction((result, cancel) => Quote(result.GetValue(domain), result.GetValue(quoteNonce), result.GetValue(output), cancel));
        return attest;
    }

    /// <summary><c>sharpvisor attest DOMAIN --nonce HEX [-o FILE]</c>: a quote signed by the domain's VMM with the host's key.</summary>
    private static Task<int> Quote(string? domain, string? nonce, string? output, CancellationToken cancel)
    {
        if (domain is null || nonce is null)
        {
            return Task.FromResult(Toolstack.Fail("attest needs DOMAIN and --nonce HEX (or: attest verify QUOTE --key PUB)"));
        }

        if (!KernelProtector.IsValidNonce(nonce))
        {
            return Task.FromResult(Toolstack.Fail($"--nonce {nonce}: a nonce is 1 to 64 bytes in hex"));
        }

        return Toolstack.RunAsync(async client =>
        {
            string quote = await client.AttestAsync(domain, nonce, cancel);
            if (output is null)
            {
                Console.WriteLine(quote);
            }
            else
            {
                await File.WriteAllTextAsync(output, quote, cancel);
                Console.WriteLine($"domain {domain}: quote for nonce {nonce.ToLowerInvariant()} written to {output}");
            }

            return ExitCodes.Success;
        }, cancel);
    }

    private static int Verify(string quotePath, string keyPath, string? nonce, string? kernel)
    {
        try
        {
            AttestationQuote quote = AttestationQuote.Parse(File.ReadAllText(quotePath));
            QuotePayload? payload = quote.Verify(File.ReadAllText(keyPath), nonce, kernel, out string reason);
            if (payload is null)
            {
                Console.Error.WriteLine($"sharpvisor: quote does not verify: {reason}");
                return 1;
            }

            Console.WriteLine("quote verifies");
            Console.WriteLine(AttestationQuote.Describe(payload));
            return 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            Console.Error.WriteLine($"sharpvisor: error: {e.Message}");
            return ExitCodes.Error;
        }
    }
}
