using System.Reflection;

namespace HymbaTools.Tests;

/// <summary>
/// The library's stages form a one-way flow (README "Layout"): a namespace may use its own and earlier stages,
/// never a later one or a sibling of the same rank. Read from the compiled assembly: signatures, fields, base
/// types, attributes, and every type and member that method bodies reference (IL tokens), so a use hidden in a
/// method body counts too.
/// </summary>
public class ArchitectureTests
{
    /// <summary>Stage of each namespace under HymbaTools (nested namespaces take their first segment).</summary>
    private static readonly Dictionary<string, int> Rank = new()
    {
        ["Common"] = 0,
        ["Checkpoints"] = 1,
        ["Text"] = 1,
        ["Model"] = 2,
        ["Quantization"] = 3,
        ["Merge"] = 3,
        ["Formats"] = 4,
        ["Runtime"] = 5,
        ["Verification"] = 6,
        ["Generation"] = 7,
        ["Reports"] = 7,
        ["Synthetic"] = 8,
        ["Benchmarks"] = 9,
    };

    private static string? StageOf(Type? type)
    {
        while (type is { IsGenericType: true, IsGenericTypeDefinition: false }) type = type.GetGenericTypeDefinition();
        if (type?.Namespace is not { } ns || !ns.StartsWith("HymbaTools.", StringComparison.Ordinal)) return null;
        return ns.Split('.')[1];
    }

    [Fact]
    public void No_stage_uses_a_later_stage_or_a_sibling()
    {
        var assembly = typeof(HymbaTools.Model.HymbaConfig).Assembly;
        var violations = new SortedSet<string>(StringComparer.Ordinal);
        var types = assembly.GetTypes().Where(t => StageOf(t) is { } s && Rank.ContainsKey(s)).ToList();
        Assert.True(types.Count > 100, $"only {types.Count} types found");
        foreach (var type in types)
        {
            string from = StageOf(type)!;
            void Check(Type? used, string how)
            {
                if (used is null) return;
                if (used.IsArray || used.IsByRef || used.IsPointer) { Check(used.GetElementType(), how); return; }
                if (used.IsGenericType) foreach (var argument in used.GetGenericArguments()) Check(argument, how);
                if (StageOf(used) is not { } to || to == from || !Rank.TryGetValue(to, out int rank)) return;
                if (rank >= Rank[from]) violations.Add($"{from} -> {to}: {type.FullName} {how} {used.FullName}");
            }
            Check(type.BaseType, "derives from");
            foreach (var i in type.GetInterfaces()) Check(i, "implements");
            const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
            foreach (var f in type.GetFields(all)) Check(f.FieldType, $"field {f.Name}");
            foreach (var m in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                if (m is MethodInfo mi) Check(mi.ReturnType, $"{m.Name} returns");
                foreach (var p in m.GetParameters()) Check(p.ParameterType, $"{m.Name} takes");
                foreach (var used in BodyReferences(m)) Check(used, $"{m.Name} uses");
            }
        }
        Assert.True(violations.Count == 0, "stage order broken:\n" + string.Join("\n", violations.Take(40)));
    }

    /// <summary>Types referenced by a method body's IL (type, field and method tokens).</summary>
    private static IEnumerable<Type> BodyReferences(MethodBase method)
    {
        foreach (var member in TestData.IlReader.Members(method))
        {
            if (member is Type t) yield return t;
            else if (member.DeclaringType is { } owner) yield return owner;
            if (member is FieldInfo fi) yield return fi.FieldType;
            if (member is MethodInfo called) yield return called.ReturnType;
        }
    }
}
