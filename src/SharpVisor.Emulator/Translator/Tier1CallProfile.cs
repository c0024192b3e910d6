using System.Reflection;
using System.Text;

namespace SharpVisor.Emulator.Translator;

/// <summary>
/// Diagnostic, off by default: with <c>SHARPVISOR_TIER1_CALL_PROFILE=FILE</c> set, tier-1 code
/// counts every call it makes out of inline code — each handler call, by handler, instruction
/// form (Iced's <c>Code</c>, register or memory operand) and reason — and the file is written
/// when the process exits. The counting call is emitted only when the variable is set, so the
/// code compiled without it is unchanged.
/// </summary>
internal static class Tier1CallProfile
{
    private const int MaxSites = 1 << 16;

    private static readonly object s_lock = new();
    private static readonly Dictionary<(nint Handler, string Form, Tier1CallReason Reason), int> s_sites = [];
    private static readonly List<(nint Handler, string Form, Tier1CallReason Reason)> s_keys = [];
    private static long[] s_counts = [];

    static Tier1CallProfile()
    {
        string? path = Environment.GetEnvironmentVariable("SHARPVISOR_TIER1_CALL_PROFILE");
        if (!string.IsNullOrEmpty(path))
        {
            FilePath = path;
            s_counts = new long[MaxSites];
            AppDomain.CurrentDomain.ProcessExit += (_, _) => WriteFile();
        }
    }

    /// <summary>Where the profile is written at exit; null when profiling is off.</summary>
    public static string? FilePath { get; }

    public static bool Enabled => FilePath is not null;

    /// <summary>The counter for one call site kind (handler, form, reason), or -1 when the table is full.</summary>
    public static int Site(nint handler, string form, Tier1CallReason reason)
    {
        lock (s_lock)
        {
            var key = (handler, form, reason);
            if (s_sites.TryGetValue(key, out int site))
            {
                return site;
            }

            if (s_keys.Count >= MaxSites)
            {
                return -1;
            }

            site = s_keys.Count;
            s_keys.Add(key);
            s_sites.Add(key, site);
            return site;
        }
    }

    /// <summary>Called by profiled tier-1 code before the call it counts.</summary>
    public static void Count(int site) => Interlocked.Increment(ref s_counts[site]);

    /// <summary>The profile as text: totals by reason, by handler, then every (handler, form, reason) row, largest first.</summary>
    public static string Report()
    {
        List<(string Handler, string Form, Tier1CallReason Reason, long Count)> rows;
        lock (s_lock)
        {
            Dictionary<nint, string> names = HandlerNames();
            rows = new(s_keys.Count);
            for (int site = 0; site < s_keys.Count; site++)
            {
                long count = Interlocked.Read(ref s_counts[site]);
                if (count != 0)
                {
                    (nint handler, string form, Tier1CallReason reason) = s_keys[site];
                    rows.Add((names.TryGetValue(handler, out string? name) ? name : $"0x{handler:x}", form, reason, count));
                }
            }
        }

        long total = rows.Sum(r => r.Count);
        var text = new StringBuilder();
        text.AppendLine($"# tier-1 calls out of inline code: {total:N0}");
        text.AppendLine("# by reason");
        foreach (var group in rows.GroupBy(r => r.Reason).Select(g => (g.Key, Count: g.Sum(r => r.Count))).OrderByDescending(g => g.Count))
        {
            text.AppendLine($"{group.Count,14:N0} {Percent(group.Count, total),6} {group.Key}");
        }

        text.AppendLine("# by handler");
        foreach (var group in rows.GroupBy(r => r.Handler).Select(g => (g.Key, Count: g.Sum(r => r.Count))).OrderByDescending(g => g.Count))
        {
            text.AppendLine($"{group.Count,14:N0} {Percent(group.Count, total),6} {group.Key}");
        }

        text.AppendLine("# by handler, form and reason");
        foreach (var row in rows.OrderByDescending(r => r.Count))
        {
            text.AppendLine($"{row.Count,14:N0} {Percent(row.Count, total),6} {row.Reason,-14} {row.Handler} {row.Form}");
        }

        return text.ToString();
    }

    private static string Percent(long count, long total) => total == 0 ? "-" : $"{100.0 * count / total:F1}%";

    private static void WriteFile()
    {
        try
        {
            File.WriteAllText(FilePath!, Report());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"SHARPVISOR_TIER1_CALL_PROFILE: cannot write {FilePath}: {e.Message}");
        }
    }

    /// <summary>
    /// Names for the handler pointers the binder stores: every static (X86Cpu, ref Op) method of
    /// the emulator, generic ones instantiated over the emulator's value types that fit their
    /// constraints (the pointer of a method is its entry point, as <c>&amp;M</c> takes it).
    /// </summary>
    private static Dictionary<nint, string> HandlerNames()
    {
        var names = new Dictionary<nint, string>();
        Type[] valueTypes = typeof(X86Cpu).Assembly.GetTypes().Where(t => t.IsValueType && !t.IsGenericTypeDefinition && !t.IsEnum).ToArray();
        foreach (Type type in typeof(X86Cpu).Assembly.GetTypes())
        {
            if (type.IsGenericTypeDefinition)
            {
                continue;
            }

            foreach (MethodInfo method in type.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                ParameterInfo[] parameters = method.GetParameters();
                if (method.ReturnType != typeof(void) || parameters.Length != 2 || parameters[0].ParameterType != typeof(X86Cpu)
                    || parameters[1].ParameterType != typeof(Op).MakeByRefType())
                {
                    continue;
                }

                if (!method.IsGenericMethodDefinition)
                {
                    names.TryAdd(method.MethodHandle.GetFunctionPointer(), $"{type.Name}.{method.Name}");
                    continue;
                }

                foreach (Type[] arguments in Combinations(method.GetGenericArguments(), valueTypes))
                {
                    MethodInfo instance;
                    try
                    {
                        instance = method.MakeGenericMethod(arguments);
                    }
                    catch (ArgumentException)
                    {
                        continue;
                    }

                    names.TryAdd(instance.MethodHandle.GetFunctionPointer(), $"{type.Name}.{method.Name}<{string.Join(",", arguments.Select(a => a.Name))}>");
                }
            }
        }

        return names;
    }

    /// <summary>The argument lists whose every type fits its parameter's interface constraints.</summary>
    private static IEnumerable<Type[]> Combinations(Type[] parameters, Type[] candidates)
    {
        var fits = new Type[parameters.Length][];
        for (int p = 0; p < parameters.Length; p++)
        {
            Type[] constraints = parameters[p].GetGenericParameterConstraints().Where(c => c.IsInterface).ToArray();
            fits[p] = candidates.Where(t => constraints.All(c => c.IsAssignableFrom(t))).ToArray();
        }

        var current = new Type[parameters.Length];
        return Walk(0);

        IEnumerable<Type[]> Walk(int p)
        {
            if (p == parameters.Length)
            {
                yield return (Type[])current.Clone();
                yield break;
            }

            foreach (Type t in fits[p])
            {
                current[p] = t;
                foreach (Type[] rest in Walk(p + 1))
                {
                    yield return rest;
                }
            }
        }
    }
}
