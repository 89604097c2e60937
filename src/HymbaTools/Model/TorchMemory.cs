using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace HymbaTools.Model;

/// <summary>
/// Direct access to the memory of contiguous CPU float32 tensors. TorchSharp's public API copies
/// (Tensor.bytes, data&lt;T&gt;().ToArray()); the forward pass fills weights and runs the scan kernel in
/// place, so it asks LibTorchSharp for the data pointer (the same native entry TorchSharp uses itself).
/// </summary>
internal static unsafe partial class TorchMemory
{
    [LibraryImport("LibTorchSharp")]
    private static partial IntPtr THSTensor_data(IntPtr handle);

    /// <summary>
    /// The tensor's memory as a span. Private: a span must not outlive its tensor, so callers get a copy
    /// (<see cref="ToArray"/>), a scoped fill (<see cref="Create"/>) or a pointer for the length of one call.
    /// </summary>
    private static Span<float> AsSpan(Tensor tensor)
    {
        if (tensor.dtype != ScalarType.Float32) throw new ArgumentException($"tensor is {tensor.dtype}, expected Float32");
        if (!tensor.is_contiguous()) throw new ArgumentException("tensor must be contiguous");
        if (tensor.device_type != DeviceType.CPU) throw new ArgumentException("tensor must be on the CPU");
        long n = tensor.numel();
        if (n > int.MaxValue) throw new ArgumentException("tensor has more than 2^31 elements");
        IntPtr data = THSTensor_data(tensor.Handle);
        if (data == IntPtr.Zero && n > 0) torch.CheckForErrors();
        return new Span<float>((void*)data, (int)n);
    }

    /// <summary>The data pointer of a contiguous CPU float64 tensor, valid while the caller holds the tensor (for loops over a matrix in place).</summary>
    public static double* DoublePointer(Tensor tensor)
    {
        if (tensor.dtype != ScalarType.Float64) throw new ArgumentException($"tensor is {tensor.dtype}, expected Float64");
        if (!tensor.is_contiguous()) throw new ArgumentException("tensor must be contiguous");
        if (tensor.device_type != DeviceType.CPU) throw new ArgumentException("tensor must be on the CPU");
        IntPtr data = THSTensor_data(tensor.Handle);
        if (data == IntPtr.Zero && tensor.numel() > 0) torch.CheckForErrors();
        return (double*)data;
    }

    /// <summary>A copy of a contiguous CPU float32 tensor's values.</summary>
    public static float[] ToArray(Tensor tensor) => AsSpan(tensor).ToArray();

    /// <summary>The data pointer, valid while the caller holds the tensor (the scan kernel's single call).</summary>
    public static float* Pointer(Tensor tensor)
    {
        var span = AsSpan(tensor);
        return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(span));
    }

    /// <summary>A new float32 tensor of the given shape filled by a writer (no intermediate managed copy).</summary>
    public static Tensor Create(long[] shape, Action<Span<float>> fill)
    {
        var t = torch.empty(shape, ScalarType.Float32);
        fill(AsSpan(t));
        return t;
    }
}
