using System.Reflection;

namespace SharpVisor.Embedding.Tests;

/// <summary>
/// The package's public surface is the embedding API and nothing else: no VMM, device or
/// accelerator type leaks through a public type or member, so the inside can change freely.
/// </summary>
public sealed class PublicSurfaceTests
{
    private static readonly Assembly s_api = typeof(VirtualMachine).Assembly;

    [Fact]
    public void OnlyTheEmbeddingTypesArePublic()
    {
        string[] expected =
        [
            "SharpVisor.Accelerator",
            "SharpVisor.DiskOptions",
            "SharpVisor.ExitReason",
            "SharpVisor.KernelDecompressor",
            "SharpVisor.NetworkInterfaceOptions",
            "SharpVisor.VirtualMachine",
            "SharpVisor.VirtualMachineException",
            "SharpVisor.VirtualMachineExit",
            "SharpVisor.VirtualMachineOptions",
            "SharpVisor.VirtualMachineState",
        ];
        Assert.Equal(expected, s_api.GetExportedTypes().Select(t => t.FullName!).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void NoPublicMemberNamesAnInternalSharpVisorType()
    {
        var leaks = new List<string>();
        foreach (Type type in s_api.GetExportedTypes())
        {
            foreach (MemberInfo member in type.GetMembers(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            {
                foreach (Type used in TypesIn(member))
                {
                    if (used.Namespace?.StartsWith("SharpVisor", StringComparison.Ordinal) == true && used.Assembly != s_api)
                    {
                        leaks.Add($"{type.Name}.{member.Name} uses {used.FullName}");
                    }
                }
            }
        }

        Assert.Empty(leaks);
    }

    private static IEnumerable<Type> TypesIn(MemberInfo member)
    {
        IEnumerable<Type> types = member switch
        {
            PropertyInfo p => [p.PropertyType],
            FieldInfo f => [f.FieldType],
            MethodInfo m => m.GetParameters().Select(p => p.ParameterType).Append(m.ReturnType),
            ConstructorInfo c => c.GetParameters().Select(p => p.ParameterType),
            EventInfo e => [e.EventHandlerType!],
            _ => [],
        };
        return types.SelectMany(Flatten);
    }

    private static IEnumerable<Type> Flatten(Type type)
    {
        yield return type;
        if (type.HasElementType)
        {
            foreach (Type inner in Flatten(type.GetElementType()!))
            {
                yield return inner;
            }
        }

        foreach (Type argument in type.IsGenericType ? type.GetGenericArguments() : [])
        {
            foreach (Type inner in Flatten(argument))
            {
                yield return inner;
            }
        }
    }
}
