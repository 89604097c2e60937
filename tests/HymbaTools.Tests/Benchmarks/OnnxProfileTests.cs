using HymbaTools.Benchmarks;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Benchmarks;

/// <summary>ONNX Runtime's trace read back: node time assigned to the run it started in, control flow counted as its body.</summary>
public class OnnxProfileTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Kernel_time_is_summed_per_op_type_within_each_phase_and_control_flow_is_not_counted_twice()
    {
        // Three runs: [0,100) first call, [200,250) and [300,350) decode. The If at 210 holds the Mul at 215.
        string trace = _dir.File("trace.json");
        File.WriteAllText(trace, """
            [
              {"cat":"Session","name":"session_initialization","ts":0,"dur":5},
              {"cat":"Session","name":"model_run","ts":0,"dur":100},
              {"cat":"Node","name":"a_kernel_time","ts":10,"dur":60,"args":{"op_name":"MatMulNBits"}},
              {"cat":"Node","name":"a_fence_before","ts":9,"dur":1,"args":{"op_name":"MatMulNBits"}},
              {"cat":"Session","name":"model_run","ts":200,"dur":50},
              {"cat":"Node","name":"b_kernel_time","ts":201,"dur":8,"args":{"op_name":"MatMulNBits"}},
              {"cat":"Node","name":"c_kernel_time","ts":210,"dur":30,"args":{"op_name":"If"}},
              {"cat":"Node","name":"d_kernel_time","ts":215,"dur":20,"args":{"op_name":"Mul"}},
              {"cat":"Session","name":"model_run","ts":300,"dur":50},
              {"cat":"Node","name":"e_kernel_time","ts":301,"dur":12,"args":{"op_name":"MatMulNBits"}}
            ]
            """);
        var phases = OnnxProfile.Read(trace, [("first", new Range(0, 1)), ("decode", new Range(1, 3))]);
        var first = phases[0];
        Assert.Equal(1, first.Runs);
        Assert.Equal(100, first.RunMicroseconds);
        Assert.Equal(new OnnxProfile.OpTime("MatMulNBits", 60, 1), Assert.Single(first.Ops));
        var decode = phases[1];
        Assert.Equal(2, decode.Runs);
        Assert.Equal(100, decode.RunMicroseconds);
        Assert.Equal([new OnnxProfile.OpTime("MatMulNBits", 20, 2), new OnnxProfile.OpTime("Mul", 20, 1)], decode.Ops);
        Assert.Equal(40, decode.KernelMicroseconds);
        string table = OnnxProfile.Table(phases);
        Assert.Contains("50.0 %", table, StringComparison.Ordinal); // MatMulNBits and Mul each half of decode's kernels
        Assert.DoesNotContain("If", table, StringComparison.Ordinal);
    }
}
