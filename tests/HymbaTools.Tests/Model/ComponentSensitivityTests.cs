using HymbaTools.Model;
using HymbaTools.Tests.TestData;
using HymbaTools.Verification;

namespace HymbaTools.Tests.Model;

/// <summary>
/// Each known-wrong variant of a component must move the logits far beyond the tolerance on the fixtures,
/// which shows the golden tests really exercise that component.
/// </summary>
public class ComponentSensitivityTests
{
    public static IEnumerable<object[]> Cases() =>
        from fixture in new[] { "tiny-a", "tiny-b" }
        from fault in Enum.GetValues<ForwardFault>().Where(f => f != ForwardFault.None)
        select new object[] { fixture, fault.ToString() };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Wrong_variant_fails_the_golden_check(string fixture, string faultName)
    {
        var fault = Enum.Parse<ForwardFault>(faultName);
        string dir = Fixtures.Path_(fixture);
        using var ckpt = HymbaCheckpoint.Open(dir);
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        var golden = GoldenData.Load(Fixtures.Golden(dir), model.Config.VocabSize);
        var len48 = golden.ForwardCases.Single(c => c.Name == "len48");
        var right = model.Forward(len48.InputIds);
        var wrong = model.Forward(len48.InputIds, new ForwardOptions { Fault = fault });
        Assert.True(LogitComparison.Compare(len48.Logits, right.Data, len48.Vocab).MaxAbsDiff <= TestTolerances.GoldenLogits);
        double diff = LogitComparison.Compare(len48.Logits, wrong.Data, len48.Vocab).MaxAbsDiff;
        Assert.True(diff > 100 * TestTolerances.GoldenLogits, $"{fault} moved the logits by only {diff:E3}");
    }
}
