using HymbaTools.Model;
using TorchSharp;

namespace HymbaTools.Tests.Model;

public class SelectiveScanTests
{
    [Theory]
    [InlineData(1, 5, 7, 16)]
    [InlineData(2, 33, 19, 8)]
    [InlineData(1, 3, 1, 5)]   // single step (decode), state width not a multiple of the vector size
    public void Native_kernel_equals_the_torch_recurrence(int batch, int channels, int steps, int n)
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(42);
        var u = torch.randn(batch, channels, steps);
        var delta = torch.nn.functional.softplus(torch.randn(batch, channels, steps));
        var a = torch.rand(channels, n).add(0.5).neg();
        var bm = torch.randn(batch, steps, n);
        var cm = torch.randn(batch, steps, n);
        var d = torch.randn(channels);
        var z = torch.randn(batch, channels, steps);
        var s0 = torch.randn(batch, channels, n);

        var (expectedY, expectedState) = SelectiveScan.RunDifferentiable(u, delta, a, bm, cm, d, z, s0);
        var state = s0.clone();
        var y = SelectiveScan.Run(u, delta, a, bm, cm, d, z, state);
        Assert.True(torch.allclose(expectedY, y, 1e-5, 1e-5), $"y differs by {(expectedY - y).abs().max().item<float>()}");
        Assert.True(torch.allclose(expectedState, state, 1e-5, 1e-5));
    }

    [Fact]
    public void Splitting_a_sequence_and_carrying_the_state_gives_the_same_output()
    {
        using var scope = torch.NewDisposeScope();
        torch.manual_seed(3);
        int c = 8, t = 12, n = 16;
        var u = torch.randn(1, c, t);
        var delta = torch.rand(1, c, t);
        var a = torch.rand(c, n).neg();
        var bm = torch.randn(1, t, n);
        var cm = torch.randn(1, t, n);
        var d = torch.randn(c);
        var z = torch.randn(1, c, t);
        var whole = SelectiveScan.Run(u, delta, a, bm, cm, d, z, torch.zeros(1, c, n));
        var state = torch.zeros(1, c, n);
        var first = SelectiveScan.Run(u[.., .., ..5].contiguous(), delta[.., .., ..5].contiguous(), a, bm[.., ..5, ..].contiguous(), cm[.., ..5, ..].contiguous(), d, z[.., .., ..5].contiguous(), state);
        var second = SelectiveScan.Run(u[.., .., 5..].contiguous(), delta[.., .., 5..].contiguous(), a, bm[.., 5.., ..].contiguous(), cm[.., 5.., ..].contiguous(), d, z[.., .., 5..].contiguous(), state);
        Assert.True(torch.allclose(whole, torch.cat([first, second], 2), 1e-6, 1e-6));
    }
}
