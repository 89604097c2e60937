using HymbaTools.Model;
using HymbaTools.Tests.TestData;
using HymbaTools.Verification;

namespace HymbaTools.Tests.Model;

/// <summary>The state after the meta tokens, computed a layer at a time, is the state a first call builds.</summary>
public class MetaTokenStateTests
{
    private static readonly string ExampleModel = Path.Combine(AppContext.BaseDirectory, "example-model");

    public static IEnumerable<object[]> Checkpoints() => Fixtures.All().Append(["example-model"]);

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void Text_after_the_precomputed_state_equals_a_first_call(string fixture)
    {
        string dir = fixture == "example-model" ? ExampleModel : Fixtures.Path_(fixture);
        using var ckpt = HymbaCheckpoint.Open(dir);
        var source = new CheckpointTensorSource(ckpt);
        var state = MetaTokenState.Compute(source);
        using var model = HymbaModel.Load(source);
        var c = model.Config;
        var rng = new Random(5);
        long[][] ids = [[.. Enumerable.Range(0, 21).Select(_ => (long)rng.Next(c.VocabSize))], [.. Enumerable.Range(0, 21).Select(_ => (long)rng.Next(c.VocabSize))]];

        var expected = model.Forward(ids);
        using var cache = HymbaCache.AfterMetaTokens(state, ids.Length);
        var actual = model.Step(ids, cache);
        var cmp = LogitComparison.Compare(expected.Data, actual.Data, c.VocabSize);
        // The same float32 operations in the same order on the same data: only libtorch's thread split can differ.
        Assert.True(cmp.MaxAbsDiff <= 1e-5, $"{fixture}: max abs diff {cmp.MaxAbsDiff:E3}");
        Assert.Equal(c.KvOwners.Count(), state.KeyValues.Count);
        Assert.All(state.ConvStates, s => Assert.Equal(c.DInner * (c.ConvKernel - 1), s.Length));
        // A state that is all zeros would make the comparison above meaningless for the SSM branch.
        Assert.All(state.SsmStates, s => Assert.Contains(s, v => v != 0));
    }
}
