using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>
/// The Mamba-1 selective scan (docs/architecture.md §3.5, step 5), parameter-free:
/// S_t = exp(Δ_t·A) ⊙ S_{t-1} + Δ_t·B_t·u_t ;  y_t = S_t·C_t + D·u_t ;  out_t = y_t · silu(z_t).
/// <para>
/// <see cref="Run"/> is the inference kernel: one pass over native float32 memory, channels in parallel,
/// the d_state-wide recurrence kept in registers and vectorised, so its cost is a small fraction of the
/// layer's GEMMs however long the sequence (a per-time-step loop of torch ops would pay ~10 µs of
/// dispatch per op and step). <see cref="RunDifferentiable"/> is the same math in torch ops, used where
/// gradients are needed and as the test oracle.
/// </para>
/// </summary>
internal static unsafe class SelectiveScan
{
    /// <summary>
    /// u, delta, z: [B, d_in, T]; A: [d_in, N]; Bm, Cm: [B, T, N]; D: [d_in]; state: [B, d_in, N], read as
    /// the initial state and overwritten with the final one. Returns y: [B, d_in, T].
    /// All tensors float32, contiguous, on the CPU.
    /// </summary>
    public static Tensor Run(Tensor u, Tensor delta, Tensor A, Tensor Bm, Tensor Cm, Tensor D, Tensor z, Tensor state)
    {
        // Every dimension is checked before a single pointer write: the kernel trusts these shapes for its indexing.
        if (u.dim() != 3 || A.dim() != 2) throw new ArgumentException("selective scan: u must be [B, d_in, T] and A [d_in, N]");
        long batch = u.shape[0], channels = u.shape[1], steps = u.shape[2], n = A.shape[1];
        static bool Is(Tensor t, params long[] shape) => t.shape.SequenceEqual(shape);
        if (!Is(delta, batch, channels, steps) || !Is(z, batch, channels, steps) || !Is(A, channels, n) || !Is(Bm, batch, steps, n)
            || !Is(Cm, batch, steps, n) || !Is(D, channels) || !Is(state, batch, channels, n))
            throw new ArgumentException($"selective scan: inconsistent shapes (u [{string.Join(", ", u.shape)}], A [{string.Join(", ", A.shape)}])");
        if (steps > int.MaxValue || n > int.MaxValue || channels > int.MaxValue) throw new ArgumentException("selective scan: dimension beyond 2^31");
        var y = torch.empty(batch, channels, steps, ScalarType.Float32);
        float* pu = TorchMemory.Pointer(u), pd = TorchMemory.Pointer(delta), pa = TorchMemory.Pointer(A), pb = TorchMemory.Pointer(Bm),
            pc = TorchMemory.Pointer(Cm), pD = TorchMemory.Pointer(D), pz = TorchMemory.Pointer(z), ps = TorchMemory.Pointer(state),
            py = TorchMemory.Pointer(y);
        int T = (int)steps, N = (int)n, C = (int)channels;
        // Work items are (batch, block of channels); blocks keep per-item overhead negligible.
        const int Block = 16;
        int blocksPerBatch = (C + Block - 1) / Block;
        Parallel.For(0, (int)batch * blocksPerBatch, HymbaTools.Common.ComputeThreads.ParallelOptions, item =>
        {
            int b = item / blocksPerBatch;
            int c0 = item % blocksPerBatch * Block, c1 = Math.Min(C, c0 + Block);
            float* bb = pb + (long)b * T * N, cc = pc + (long)b * T * N;
            for (int c = c0; c < c1; c++)
            {
                long row = ((long)b * C + c) * T;
                ScanChannel(pu + row, pd + row, pz + row, py + row, pa + (long)c * N, pD[c], bb, cc, ps + ((long)b * C + c) * N, T, N);
            }
        });
        return y;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScanChannel(float* u, float* delta, float* z, float* y, float* a, float d, float* bm, float* cm, float* state, int T, int N)
    {
        int vectorEnd = Vector256.IsHardwareAccelerated ? N - N % Vector256<float>.Count : 0;
        for (int t = 0; t < T; t++)
        {
            float dt = delta[t], x = u[t];
            float* bt = bm + (long)t * N, ct = cm + (long)t * N;
            float acc = 0f;
            int m = 0;
            if (vectorEnd > 0)
            {
                var dtv = Vector256.Create(dt);
                var dxv = Vector256.Create(dt * x);
                var sum = Vector256<float>.Zero;
                for (; m < vectorEnd; m += Vector256<float>.Count)
                {
                    var decay = Vector256.Exp(dtv * Vector256.Load(a + m));
                    var s = decay * Vector256.Load(state + m) + dxv * Vector256.Load(bt + m);
                    s.Store(state + m);
                    sum += s * Vector256.Load(ct + m);
                }
                acc = Vector256.Sum(sum);
            }
            for (; m < N; m++)
            {
                float s = MathF.Exp(dt * a[m]) * state[m] + dt * x * bt[m];
                state[m] = s;
                acc += s * ct[m];
            }
            float gate = z[t];
            y[t] = (acc + d * x) * (gate / (1f + MathF.Exp(-gate)));
        }
    }

    /// <summary>
    /// The same recurrence in torch ops (autograd-friendly; one small op group per time step).
    /// Shapes as in <see cref="Run"/>; returns (y, final state) and does not modify its inputs.
    /// </summary>
    public static (Tensor Y, Tensor State) RunDifferentiable(Tensor u, Tensor delta, Tensor A, Tensor Bm, Tensor Cm, Tensor D, Tensor z, Tensor initialState)
    {
        long steps = u.shape[2];
        // unbind once instead of indexing per step: an index's backward writes a full-size gradient for
        // every step (quadratic in T), unbind's backward stacks the step gradients once.
        var deltas = delta.unbind(2);
        var inputs = (delta * u).unbind(2);
        var bs = Bm.unbind(1);
        var cs = Cm.unbind(1);
        var s = initialState;
        var outputs = new Tensor[steps];
        for (int t = 0; t < steps; t++)
        {
            var decay = (deltas[t].unsqueeze(-1) * A).exp();                              // [B, d_in, N]
            s = TorchScalars.Add(decay * s, inputs[t].unsqueeze(-1) * bs[t].unsqueeze(1));
            outputs[t] = (s * cs[t].unsqueeze(1)).sum(-1);                               // [B, d_in]
        }
        var y = torch.stack(outputs, -1);                                                 // [B, d_in, T]
        y = TorchScalars.Add(y, D.unsqueeze(-1) * u) * torch.nn.functional.silu(z);
        return (y, s);
    }
}
