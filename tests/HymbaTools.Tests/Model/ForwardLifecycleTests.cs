using HymbaTools.Model;
using HymbaTools.Tests.TestData;
using TorchSharp;

namespace HymbaTools.Tests.Model;

public class ForwardLifecycleTests
{
    [Fact]
    public void Forward_leaves_no_native_tensors_behind()
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyB);
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        long[][] ids = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]];
        model.Forward(ids); // warm-up: lazily created globals
        var stats = DisposeScopeManager.Statistics;
        stats.Reset();
        for (int i = 0; i < 2; i++)
        {
            using var cache = model.NewCache(1);
            model.Step(ids, cache);
            model.Step([[5]], cache);
        }
        Assert.Equal(0, stats.ThreadTotalLiveCount);
    }

    [Fact]
    public void Sliding_window_cache_is_trimmed_but_keeps_the_meta_tokens()
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA); // window 8, 8 meta tokens; layer 1 is a sliding owner
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        using var exact = model.NewCache(1, DecodeWindowMode.MatchFullForward);
        using var official = model.NewCache(1, DecodeWindowMode.OfficialGenerate);
        long[] prompt = Enumerable.Range(1, 20).Select(i => (long)i).ToArray();
        model.Step([prompt], exact);
        model.Step([prompt], official);
        Assert.Equal(8 + 8, exact.CachedKeys(1));      // meta + window keys for the next query
        Assert.Equal(8 + 7, official.CachedKeys(1));   // meta + window - 1 (the official trim)
        Assert.Equal(8 + 20, exact.CachedKeys(0));     // global layer keeps everything
        Assert.Equal(0, exact.CachedKeys(2));          // consumer stores nothing
    }

    [Fact]
    public void Out_of_vocabulary_id_is_an_input_error()
    {
        using var ckpt = HymbaCheckpoint.Open(Fixtures.TinyA);
        using var model = HymbaModel.Load(new CheckpointTensorSource(ckpt));
        var e = Assert.Throws<HymbaTools.Common.InvalidRequestException>(() => model.Forward([[1, 512]]));
        Assert.Contains("outside the vocabulary", e.Message);
    }
}
