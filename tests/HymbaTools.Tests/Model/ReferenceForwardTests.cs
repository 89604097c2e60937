using HymbaTools.Runtime;
using HymbaTools.Model;
using HymbaTools.Tests.TestData;
using HymbaTools.Verification;

namespace HymbaTools.Tests.Model;

/// <summary>The reference forward pass against logits of the official PyTorch code (every fixture set found).</summary>
public class ReferenceForwardTests
{
    private static (ReferenceRunner Runner, GoldenData Golden) Load(string fixture)
    {
        string dir = Fixtures.Path_(fixture);
        using var ckpt = HymbaCheckpoint.Open(dir);
        var runner = new ReferenceRunner(HymbaModel.Load(new CheckpointTensorSource(ckpt)), dir);
        return (runner, GoldenData.Load(Fixtures.Golden(dir), runner.Config.VocabSize));
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void Full_forward_matches_official_logits(string fixture)
    {
        var (runner, golden) = Load(fixture);
        using var _ = runner;
        Assert.NotEmpty(golden.ForwardCases);
        foreach (var c in golden.ForwardCases)
        {
            var logits = runner.Forward(c.InputIds);
            var cmp = LogitComparison.Compare(c.Logits, logits.Data, c.Vocab);
            Assert.True(cmp.MaxAbsDiff <= TestTolerances.GoldenLogits, $"{fixture}/{c.Name}: max abs diff {cmp.MaxAbsDiff:E3}");
            Assert.Equal(1.0, cmp.ArgmaxAgreement);
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void Cached_decode_matches_the_full_forward_by_default(string fixture)
    {
        var (runner, golden) = Load(fixture);
        using var _ = runner;
        Assert.NotEmpty(golden.DecodeCases);
        foreach (var c in golden.DecodeCases)
        {
            var decoded = Verifier.DecodeLogits(runner, c.PromptIds, c.GeneratedIds, DecodeWindowMode.MatchFullForward);
            var cmp = LogitComparison.Compare(c.FullForwardLogits!, decoded, c.Vocab);
            Assert.True(cmp.MaxAbsDiff <= TestTolerances.GoldenLogits, $"{fixture}/{c.Name}: max abs diff {cmp.MaxAbsDiff:E3}");
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures.All), MemberType = typeof(Fixtures))]
    public void Compatibility_mode_reproduces_the_official_generate(string fixture)
    {
        var (runner, golden) = Load(fixture);
        using var _ = runner;
        Assert.NotEmpty(golden.DecodeCases); // a fixture set without decode cases must not pass this silently
        foreach (var c in golden.DecodeCases)
        {
            Assert.NotNull(c.StepLogits);
            var decoded = Verifier.DecodeLogits(runner, c.PromptIds, c.GeneratedIds, DecodeWindowMode.OfficialGenerate);
            var cmp = LogitComparison.Compare(c.StepLogits!, decoded, c.Vocab);
            Assert.True(cmp.MaxAbsDiff <= TestTolerances.GoldenLogits, $"{fixture}/{c.Name}: max abs diff {cmp.MaxAbsDiff:E3}");
        }
    }

    [Fact]
    public void The_two_decode_modes_really_differ_beyond_the_window()
    {
        // gen_a of tiny-a decodes past the window of 8: the official generate() sees one key fewer there.
        var (runner, golden) = Load("tiny-a");
        using var _ = runner;
        var c = golden.DecodeCases.Single(d => d.Name == "gen_a");
        var exact = Verifier.DecodeLogits(runner, c.PromptIds, c.GeneratedIds, DecodeWindowMode.MatchFullForward);
        var official = Verifier.DecodeLogits(runner, c.PromptIds, c.GeneratedIds, DecodeWindowMode.OfficialGenerate);
        Assert.True(LogitComparison.Compare(exact, official, c.Vocab).MaxAbsDiff > 0.1);
    }

    [Fact]
    public void Hidden_states_of_every_layer_match_the_official_ones()
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA);
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        using var file = HymbaTools.Checkpoints.SafetensorsFile.Open(Fixtures.Golden(Fixtures.TinyA));
        Assert.True(file.TryGetTensor("len17.input_ids", out var idsView));
        Assert.True(file.TryGetTensor("len17.hidden_states", out var statesView));
        var ids = idsView.ToInt64Array();
        var reference = statesView.ToFloat32Array();
        var states = model.Forward([ids], new ForwardOptions { CaptureHiddenStates = true }).HiddenStates!;
        Assert.Equal(statesView.Shape[0], states.Count);
        int size = states[0].Length;
        for (int layer = 0; layer < states.Count; layer++)
        {
            double max = 0;
            for (int i = 0; i < size; i++) max = Math.Max(max, Math.Abs(reference[layer * size + i] - states[layer][i]));
            Assert.True(max <= TestTolerances.GoldenLogits, $"hidden state {layer}: max abs diff {max:E3}");
        }
    }
}
