using System.Text.Json;
using HymbaTools.Merge;
using HymbaTools.Model;
using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;
using HymbaTools.Verification;

namespace HymbaTools.Tests.Merge;

public class KvMergeTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Merging_a_lone_sliding_layer_into_a_group_writes_a_valid_smaller_checkpoint()
    {
        string output = Path.Combine(_dir.Path, "merged");
        long[] ids = Enumerable.Range(0, 40).Select(i => (long)(i * 37 % 1000)).ToArray();
        string tokens = _dir.File("tokens.txt");
        File.WriteAllText(tokens, string.Join(' ', ids));
        var r = CliRunner.Run("merge-kv", Fixtures.TinyB, "--groups", "[[1,2,3,4]]", "-o", output, "--json", "--seq-len", "100", "--tokens", tokens);
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var merged = HymbaCheckpoint.Open(output);
        Assert.Equal([0, 1, 1, 1, 1, 5], merged.Config.Layers.Select(l => l.KvSource));
        Assert.Equal(96 + 192 + 192, merged.Get(4, TensorRole.InProj).Shape[0]); // Q | x | z
        using var original = HymbaCheckpoint.Open(Fixtures.TinyB);
        // Layer 4's Q, x and z rows are the original ones.
        var before = original.Get(4, TensorRole.InProj).ToFloat32Array();
        var after = merged.Get(4, TensorRole.InProj).ToFloat32Array();
        var layout = original.Config.Layers[4].InProj;
        Assert.Equal(before.AsSpan(0, 96 * 96).ToArray(), after.AsSpan(0, 96 * 96).ToArray());
        Assert.Equal(before.AsSpan(layout.X.Start * 96, 384 * 96).ToArray(), after.AsSpan(96 * 96, 384 * 96).ToArray());

        using var doc = JsonDocument.Parse(r.Stdout);
        long b = doc.RootElement.GetProperty("cache_bytes_before").GetProperty("100").GetInt64();
        long a = doc.RootElement.GetProperty("cache_bytes_after").GetProperty("100").GetInt64();
        // One sliding KV owner less: H_kv (d_h + d_v) x 2 bytes per token x (16 meta + window 12 tokens).
        Assert.Equal(2 * (16 + 32) * 2 * (16 + 12), b - a);
        // The reported cost is the one the two checkpoints really have on these tokens.
        var accuracy = doc.RootElement.GetProperty("accuracy");
        LogitComparison expected;
        using (var originalModel = HymbaModel.Load(new CheckpointTensorSource(original)))
        using (var m = HymbaModel.Load(new CheckpointTensorSource(merged)))
            expected = LogitComparison.Compare(originalModel.Forward([ids]).Data, m.Forward([ids]).Data, original.Config.VocabSize);
        Assert.True(expected.MaxAbsDiff > 0.01, $"merging changed the logits by only {expected.MaxAbsDiff}"); // a different model
        Assert.Equal(expected.MaxAbsDiff, accuracy.GetProperty("max_abs_diff").GetDouble(), 1e-6);
        Assert.Equal(expected.MeanKl, accuracy.GetProperty("mean_kl").GetDouble(), 1e-9);
        Assert.Equal(expected.ArgmaxAgreement, accuracy.GetProperty("argmax_agreement").GetDouble(), 1e-9);

        var verify = CliRunner.Run("verify", output);
        Assert.True(verify.ExitCode == 0, verify.Stdout);
    }

    [Theory]
    [InlineData("[[1,2],[2,3]]", "overlap")]
    [InlineData("[[4,5]]", "global layer 5 cannot consume")]
    [InlineData("[[1,9]]", "out of range")]
    [InlineData("[[2,4]]", "cannot produce")]
    [InlineData("[[4,1]]", "comes before its producer")]
    [InlineData("[[1,2]]", "must stay a consumer")]
    [InlineData("nonsense", "not a JSON list")]
    public void Invalid_groups_are_refused_with_exit_2(string groups, string message)
    {
        var r = CliRunner.Run("merge-kv", Fixtures.TinyB, "--groups", groups, "-o", Path.Combine(_dir.Path, "x"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.FirstErrorLine);
        Assert.False(File.Exists(Path.Combine(_dir.Path, "x", "config.json")));
    }

    [Fact]
    public void Untouched_existing_groups_are_kept()
    {
        var config = HymbaConfig.Load(Path.Combine(Fixtures.TinyB, "config.json"));
        var groups = KvMerge.Resolve(config, [[1, 2, 3, 4]]);
        Assert.Single(groups);
        var kept = KvMerge.Resolve(config, [[0, 5]]);
        Assert.Equal([[0, 5], [1, 2, 3]], kept);
    }
}
