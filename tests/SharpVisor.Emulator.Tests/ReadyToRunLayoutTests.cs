using System.Numerics;
using System.Reflection;
using System.Runtime.Intrinsics;

namespace SharpVisor.Emulator.Tests;

/// <summary>
/// ReadyToRun (crossgen2) precompiles no method whose signature has a type with an "ABI unstable"
/// layout — a type that holds, directly or in a struct field, a hardware vector or a 128-bit
/// integer. The handlers' signature is <c>(X86Cpu, ref Op)</c>: one such field in
/// <see cref="X86Cpu"/> left every handler to the JIT's unoptimised Tier0 code at a VMM's start
/// (2,416 of the emulator's methods precompiled instead of 3,311; docs/emulator.md, "Twelfth step").
/// </summary>
public sealed class ReadyToRunLayoutTests
{
    [Theory]
    [InlineData(typeof(X86Cpu))]
    [InlineData(typeof(Op))]
    [InlineData(typeof(Block))]
    public void HotSignatureTypesHaveNoAbiUnstableFields(Type type)
    {
        List<string> unstable = [];
        Walk(type, type.Name, unstable, depth: 0);
        Assert.True(unstable.Count == 0, $"{type.Name} holds ABI-unstable fields: {string.Join(", ", unstable)}");
    }

    [Fact]
    public void TheWalkFindsAVectorInsideAStruct()
    {
        List<string> unstable = [];
        Walk(typeof(HoldsAVector), nameof(HoldsAVector), unstable, depth: 0);
        Assert.Equal(["HoldsAVector.Inner.Value"], unstable);
    }

    private static void Walk(Type type, string path, List<string> unstable, int depth)
    {
        foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            Type fieldType = field.FieldType;
            string fieldPath = $"{path}.{field.Name}";
            if (IsAbiUnstable(fieldType))
            {
                unstable.Add(fieldPath);
            }
            else if (fieldType.IsValueType && !fieldType.IsPrimitive && !fieldType.IsEnum && !fieldType.IsPointer && depth < 8)
            {
                Walk(fieldType, fieldPath, unstable, depth + 1);
            }
        }
    }

    private static bool IsAbiUnstable(Type type)
    {
        if (type == typeof(Int128) || type == typeof(UInt128))
        {
            return true;
        }

        if (!type.IsGenericType)
        {
            return false;
        }

        Type definition = type.GetGenericTypeDefinition();
        return definition == typeof(Vector64<>) || definition == typeof(Vector128<>) || definition == typeof(Vector256<>)
            || definition == typeof(Vector512<>) || definition == typeof(Vector<>);
    }

#pragma warning disable CS0649 // only their layout matters
    private struct Wrapper
    {
        public Vector128<byte> Value;
    }

    private sealed class HoldsAVector
    {
        public int Plain;
        public Wrapper Inner;
    }
#pragma warning restore CS0649
}
