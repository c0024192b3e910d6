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
        return new Command("attest", "Remote attestation of a protected domain's kernel") { verify };
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
