using System.Security.Cryptography;

namespace SharpVisor.Security;

/// <summary>
/// The host's attestation key: ECDSA P-256 (.NET's own crypto), the private key in a PKCS#8 PEM
/// file created 0600 under the runtime directory, the public key exported next to it (SPKI PEM)
/// for verifiers. Created on first use; an existing key is reused, never overwritten.
/// </summary>
public sealed class AttestationKey : IDisposable
{
    public const string PrivateKeyFile = "attestation-key.pem";
    public const string PublicKeyFile = "attestation-key.pub.pem";

    private readonly ECDsa _key;

    private AttestationKey(ECDsa key, string? directory)
    {
        _key = key;
        Directory = directory;
    }

    /// <summary>Where the key files are (null for an in-memory key).</summary>
    public string? Directory { get; }

    public string PublicKeyPem => _key.ExportSubjectPublicKeyInfoPem();

    /// <summary>SHA-256 of the public key (SPKI DER), lower-case hex: names the key in a quote.</summary>
    public string KeyId => Convert.ToHexStringLower(SHA256.HashData(_key.ExportSubjectPublicKeyInfo()));

    public static AttestationKey CreateEphemeral() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256), null);

    /// <summary>Loads the key from <paramref name="directory"/>, creating it (0600) and its public half if missing.</summary>
    public static AttestationKey LoadOrCreate(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        string privatePath = Path.Combine(directory, PrivateKeyFile);
        string publicPath = Path.Combine(directory, PublicKeyFile);
        var key = ECDsa.Create();
        if (File.Exists(privatePath))
        {
            key.ImportFromPem(File.ReadAllText(privatePath));
            if (key.KeySize != 256)
            {
                key.Dispose();
                throw new CryptographicException($"{privatePath} is not a P-256 key");
            }
        }
        else
        {
            key.Dispose();
            key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            using (var file = new FileStream(privatePath, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }))
            using (var writer = new StreamWriter(file))
            {
                writer.Write(key.ExportPkcs8PrivateKeyPem());
            }
        }

        File.WriteAllText(publicPath, key.ExportSubjectPublicKeyInfoPem());
        return new AttestationKey(key, directory);
    }

    public byte[] Sign(ReadOnlySpan<byte> data) => _key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public void Dispose() => _key.Dispose();
}
