using System.Reflection;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Model;

/// <summary>
/// TorchSharp passes the Scalars it makes from numbers (an exponent, softplus's beta, a constant to add) to libtorch
/// by handle only, so the GC may finalize one while libtorch reads it: full test runs failed in Scalar::toFloat
/// (softplus) and Scalar::equal (pow, behind square()). The library must reach no TorchSharp operation that makes
/// such a temporary; constants go through TorchScalars, whose Scalars live for the process. Read from the compiled
/// library: every TorchSharp method it calls, and the TorchSharp methods those call (two levels), is checked for a
/// conversion to Scalar.
/// </summary>
public class TorchScalarUseTests
{
    private static bool IsScalarConversion(MethodBase m) =>
        m.DeclaringType?.FullName is "TorchSharp.Scalar" && m.Name == "op_Implicit" || m.Name == "ToScalar" && m.DeclaringType?.Namespace == "TorchSharp";

    /// <summary>Whether calling <paramref name="method"/> converts a number to a Scalar within <paramref name="depth"/> levels of TorchSharp's own code.</summary>
    private static bool MakesTemporaryScalar(MethodBase method, Dictionary<MethodBase, bool> known, int depth = 2)
    {
        if (known.TryGetValue(method, out bool result)) return result;
        known[method] = false;   // a cycle adds nothing
        result = IsScalarConversion(method) || depth > 0 && IlReader.Members(method).OfType<MethodBase>()
            .Where(c => c.DeclaringType?.Assembly == method.DeclaringType?.Assembly)
            .Any(c => MakesTemporaryScalar(c, known, depth - 1));
        return known[method] = result;
    }

    [Fact]
    public void The_library_makes_no_temporary_torch_scalar()
    {
        var library = typeof(HymbaTools.Model.HymbaConfig).Assembly;
        var torchSharp = typeof(TorchSharp.torch).Assembly;
        var known = new Dictionary<MethodBase, bool>();
        var violations = new SortedSet<string>(StringComparer.Ordinal);
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        int checkedCalls = 0;
        foreach (var type in library.GetTypes())
        {
            // TorchScalars makes the process-lifetime Scalars (its cache roots them): the one place allowed to convert.
            if (type.FullName?.StartsWith("HymbaTools.Model.TorchScalars", StringComparison.Ordinal) == true) continue;
            foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
                foreach (var called in IlReader.Members(method).OfType<MethodBase>().Where(c => c.DeclaringType?.Assembly == torchSharp))
                {
                    checkedCalls++;
                    if (MakesTemporaryScalar(called, known)) violations.Add($"{type.Name}.{method.Name} calls {called.DeclaringType!.Name}.{called}");
                }
        }
        Assert.True(checkedCalls > 50, $"only {checkedCalls} TorchSharp calls found");
        Assert.True(violations.Count == 0, "temporary Scalars (use TorchScalars):\n" + string.Join("\n", violations));
    }
}
