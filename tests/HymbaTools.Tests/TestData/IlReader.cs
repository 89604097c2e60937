using System.Reflection;
using System.Reflection.Emit;

namespace HymbaTools.Tests.TestData;

/// <summary>The members (types, fields, methods) a method body's IL refers to by token, for tests that check what code uses.</summary>
public static class IlReader
{
    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    public static IEnumerable<MemberInfo> Members(MethodBase method)
    {
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (InvalidOperationException) { yield break; }
        if (il is null) yield break;
        var module = method.Module;
        Type[]? typeArgs = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        Type[]? methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int i = 0; i < il.Length;)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            switch (op.OperandType)
            {
                case OperandType.InlineType or OperandType.InlineTok or OperandType.InlineField or OperandType.InlineMethod:
                    MemberInfo? member = null;
                    try { member = module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs); }
                    catch (ArgumentException) { }
                    if (member is not null) yield return member;
                    i += 4;
                    break;
                case OperandType.InlineSwitch:
                    i += 4 + 4 * BitConverter.ToInt32(il, i);
                    break;
                default:
                    i += op.OperandType switch
                    {
                        OperandType.InlineNone => 0,
                        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                        OperandType.InlineVar => 2,
                        OperandType.InlineI8 or OperandType.InlineR => 8,
                        _ => 4,
                    };
                    break;
            }
        }
    }
}
