using System.Collections.Concurrent;
using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>
/// Long-lived Scalars for the forward pass. TorchSharp's operators create a temporary Scalar for every
/// constant (and for the alpha = 1 of tensor + tensor) and pass only its native handle, so the GC may
/// finalize the Scalar while libtorch still reads it; under allocation pressure (training) that showed up as
/// "Expected false to be true" in Scalar::toFloat. Ops here take Scalars that stay rooted for the process.
/// </summary>
internal static class TorchScalars
{
    private static readonly ConcurrentDictionary<double, Scalar> Cache = new();

    public static Scalar Of(double value) => Cache.GetOrAdd(value, v => v.ToScalar());

    public static readonly Scalar One = Of(1.0);
    public static readonly Scalar MinusOne = Of(-1.0);

    /// <summary>a + b without a temporary alpha Scalar.</summary>
    public static Tensor Add(Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a + constant (with an explicit alpha: Tensor.add(Scalar) would create a temporary one).</summary>
    public static Tensor Add(Tensor a, double value) => a.add(Of(value), One);

    /// <summary>
    /// Runs native-heavy work with no garbage collection inside it: collects and drains the finalizer queue
    /// first, then keeps the GC off (no-GC region) while the work runs, so no finalizer can free a Scalar
    /// that libtorch is reading (TorchSharp's own optimizers and loss functions create such temporaries).
    /// Falls back to running normally when the runtime cannot reserve the budget.
    /// </summary>
    public static T WithoutGc<T>(Func<T> work, long budgetBytes = 128L << 20)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        bool noGc = false;
        try { noGc = GC.TryStartNoGCRegion(budgetBytes); }
        catch (InvalidOperationException) { }
        catch (ArgumentOutOfRangeException) { }
        try { return work(); }
        finally
        {
            if (noGc && System.Runtime.GCSettings.LatencyMode == System.Runtime.GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
    }

    /// <summary>
    /// x², as x * x: TorchSharp's square() is pow(x, 2) with a temporary Scalar exponent (seen failing in Scalar::equal
    /// inside pow during a test run); ATen computes pow with exponent 2 as x * x, so the bits are the same.
    /// </summary>
    public static Tensor Square(Tensor x) => x.mul(x);

    /// <summary>a * constant.</summary>
    public static Tensor Mul(Tensor a, double value) => a.mul(Of(value));

    /// <summary>
    /// torch.nn.functional.softplus with its defaults (beta 1, threshold 20, as the official code calls it), through the
    /// same native entry point as TorchSharp's own softplus and so the same kernel and bits, but with process-lifetime
    /// Scalars: TorchSharp's only public softplus converts beta and threshold to temporary Scalars passed by handle,
    /// which the GC may finalize mid-call (seen as "Expected false to be true" in Scalar::toFloat in a test run).
    /// </summary>
    public static Tensor Softplus(Tensor x)
    {
        IntPtr result = SoftplusDefaults.Call(x.Handle, SoftplusDefaults.Beta, SoftplusDefaults.Threshold);
        GC.KeepAlive(x);
        if (result == IntPtr.Zero) torch.CheckForErrors();
        return Tensor.UnsafeCreateTensor(result);
    }

    /// <summary>Native Scalars made once, when the first softplus runs (TorchSharp has loaded its native library by then), and never freed.</summary>
    private static class SoftplusDefaults
    {
        public static readonly IntPtr Beta = Float64ToScalar(1.0), Threshold = Float64ToScalar(20.0);

        [System.Runtime.InteropServices.DllImport("LibTorchSharp", EntryPoint = "THSTorch_float64_to_scalar")]
        private static extern IntPtr Float64ToScalar(double value);

        [System.Runtime.InteropServices.DllImport("LibTorchSharp", EntryPoint = "THSTensor_softplus")]
        public static extern IntPtr Call(IntPtr tensor, IntPtr beta, IntPtr threshold);
    }
}
