using HymbaTools.Common;
using HymbaTools.Formats.Onnx;
using HymbaTools.Model;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace HymbaTools.Runtime;

/// <summary>
/// An exported Hymba directory (model.onnx + config.json) run by ONNX Runtime. The decoding state lives in
/// ORT values: each step's present outputs are fed back as the next step's pasts, as onnxruntime-genai runs the
/// graph; the graph itself bounds the sliding groups' keys (<see cref="HymbaStateLayout"/>).
/// </summary>
public sealed class OnnxRunner : IHymbaRunner
{
    private readonly InferenceSession _session;
    private readonly string _modelPath;
    private readonly Dictionary<string, StateTensor> _states;

    private OnnxRunner(InferenceSession session, HymbaConfig config, string directory)
    {
        _session = session;
        Config = config;
        Directory = directory;
        _modelPath = Path.Combine(directory, HymbaOnnxNames.ModelFile);
        // The K/V element type as the graph declares it (exports of 0.3 and earlier are float32).
        string? firstKey = config.KvOwners.Select(l => HymbaOnnxNames.PastKey(l.Index)).FirstOrDefault(session.InputMetadata.ContainsKey);
        var keyType = firstKey is not null && session.InputMetadata[firstKey].ElementDataType == TensorElementType.Float16 ? OnnxStateType.F16 : OnnxStateType.F32;
        State = new HymbaStateLayout(config, keyType);
        var states = State.States;
        _states = states.ToDictionary(s => s.Past, StringComparer.Ordinal);
        PastNames = [.. states.Select(s => s.Past)];
        PresentNames = [.. states.Select(s => s.Present)];
        InputNames = [HymbaOnnxNames.InputIds, HymbaOnnxNames.AttentionMask, .. PastNames];
        OutputNames = [HymbaOnnxNames.Logits, .. PresentNames];
    }

    public HymbaConfig Config { get; }
    public string Directory { get; }
    /// <summary>The decoding state's tensors, shapes and element types.</summary>
    internal HymbaStateLayout State { get; }
    /// <summary>Model metadata_props (provenance: tool version, export type, source path and hashes).</summary>
    public IReadOnlyDictionary<string, string> Metadata => _session.ModelMetadata.CustomMetadataMap;
    public string ExportType => Metadata.GetValueOrDefault(HymbaOnnxNames.MetaType, "f32");

    /// <summary>
    /// MatMulNBits with int8 activations (accuracy_level 4) picks its kernel by the number of rows, so one token
    /// at a time or a batch gives logits that differ by about the activation rounding (measured up to 0.15 max
    /// abs on the fixtures, against 0.47 for the int8 weights themselves); float weights and accuracy_level 0 agree
    /// to float32 rounding.
    /// </summary>
    public double? ConsistencyTolerance =>
        ExportType is "int8" or "int4" && Metadata.GetValueOrDefault(HymbaOnnxNames.MetaAccuracyLevel, "0") != "0" ? 0.25 : null;
    /// <summary>
    /// A float16 K/V cache rounds every key and value to 11 significant bits (half an ulp: 2.4e-4 relative), which moves
    /// logits by up to 3.1e-3 on the golden fixtures and 2.7e-3 on the example model over 1,020 held-out tokens (mean KL
    /// 7.8e-9, the same top token everywhere); 1e-2 bounds that with a margin and stays far below what a wrong graph gives.
    /// </summary>
    public (double Tolerance, string Reason)? ReferenceTolerance =>
        State.KeyValueType == OnnxStateType.F16 ? (1e-2, "float16 K/V cache: each key and value rounded to 11 bits") : null;
    public string Description => Directory + " (ONNX Runtime)";
    public string Runtime => $"ONNX Runtime {ExportType}";
    /// <summary>The state inputs in a fixed order (K/V of owners, then conv and SSM of every layer).</summary>
    public IReadOnlyList<string> PastNames { get; }
    internal IReadOnlyList<string> PresentNames { get; }

    public static bool IsOnnxDirectory(string path) => System.IO.Directory.Exists(path) && File.Exists(Path.Combine(path, HymbaOnnxNames.ModelFile));

    /// <summary>Opens an export; with <paramref name="profilePrefix"/> ONNX Runtime's profiler traces every run (<see cref="EndProfiling"/> names the file).</summary>
    public static OnnxRunner Open(string directory, int? threads = null, string? profilePrefix = null)
    {
        string full = Path.GetFullPath(directory);
        var config = HymbaConfig.Load(Path.Combine(full, "config.json"));
        string model = Path.Combine(full, HymbaOnnxNames.ModelFile);
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = threads ?? HymbaTools.Common.ComputeThreads.Count };
        // The prefix first: setting EnableProfiling hands ONNX Runtime the prefix of that moment (the default one
        // wrote onnxruntime_profile_*.json into the current directory).
        if (profilePrefix is not null) { options.ProfileOutputPathPrefix = profilePrefix; options.EnableProfiling = true; }
        InferenceSession session;
        try { session = new InferenceSession(model, options); }
        catch (OnnxRuntimeException e) { throw new InvalidCheckpointException(model, "", $"ONNX Runtime cannot load it ({FirstLine(e.Message)})"); }
        var runner = new OnnxRunner(session, config, full);
        try { runner.CheckSignature(); }
        catch { runner.Dispose(); throw; }
        return runner;
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    /// <summary>The graph must have exactly the inputs this config implies (a directory mixed from two exports fails here).</summary>
    private void CheckSignature()
    {
        var inputs = _session.InputMetadata.Keys.ToHashSet(StringComparer.Ordinal);
        if (inputs.Contains(HymbaOnnxNames.Of(HymbaOnnxNames.LegacyPastConvPattern, 0)))
            throw new InvalidCheckpointException(_modelPath, HymbaOnnxNames.Of(HymbaOnnxNames.LegacyPastConvPattern, 0),
                "an export of hymba 0.2 (meta tokens in the decoding state, state names genai cannot run); export the checkpoint again with this version");
        foreach (var name in new[] { HymbaOnnxNames.InputIds, HymbaOnnxNames.AttentionMask }.Concat(PastNames))
            if (!inputs.Contains(name)) throw new InvalidCheckpointException(_modelPath, name, "graph input missing (the model does not match config.json)");
        foreach (var state in State.States)
        {
            var declared = _session.InputMetadata[state.Past].Dimensions;
            bool matches = declared.Length == state.Shape.Length && declared.Select((d, k) => state.Shape[k] < 0 || d == state.Shape[k]).All(x => x);
            if (!matches)
                throw new InvalidCheckpointException(_modelPath, state.Past, state.IsKeyOrValue
                    ? $"shape [{string.Join(", ", declared)}] is an earlier hymba's state layout (K/V zero-padded to one width); export the checkpoint again with this version"
                    : $"shape [{string.Join(", ", declared)}], expected [{string.Join(", ", state.Shape)}] from config.json (-1: any)");
        }
        var outputs = _session.OutputMetadata.Keys.ToHashSet(StringComparer.Ordinal);
        foreach (var name in PresentNames.Append(HymbaOnnxNames.Logits))
            if (!outputs.Contains(name)) throw new InvalidCheckpointException(_modelPath, name, "graph output missing (the model does not match config.json)");
    }

    internal StateTensor StateOf(string pastName) => _states[pastName];

    /// <summary>The fixed dims of a state input for a batch (-1 = the growing sequence axis of K/V).</summary>
    public long[] ExpectedShape(string pastName, int batch) =>
        _states.TryGetValue(pastName, out var state)
            ? state.Shape.Select(d => d switch { -1 => batch, -2 => -1, _ => d }).ToArray()
            : throw new InvalidRequestException(pastName, "not a state input of this model");

    public LogitsResult Forward(long[][] ids)
    {
        using var session = new OnnxDecodeSession(this, ids.Length, DecodeWindowMode.MatchFullForward);
        return session.Step(ids);
    }

    /// <summary>A state tensor as an ORT value from float32 data: float16 inputs get the data rounded to nearest.</summary>
    internal static OrtValue StateValue(StateTensor state, float[] data, long[] shape)
    {
        if (state.ElementBytes == sizeof(float)) return OrtValue.CreateTensorValueFromMemory(data, shape);
        var half = new Float16[data.Length];
        for (int i = 0; i < data.Length; i++) half[i] = new Float16(BitConverter.HalfToUInt16Bits((Half)data[i]));
        return OrtValue.CreateTensorValueFromMemory(half, shape);
    }

    /// <summary>A state value's data as float32 (float16 widened exactly).</summary>
    internal static float[] Float32Data(OrtValue value)
    {
        if (value.GetTensorTypeAndShape().ElementDataType == TensorElementType.Float) return value.GetTensorDataAsSpan<float>().ToArray();
        var half = value.GetTensorDataAsSpan<Float16>();
        var data = new float[half.Length];
        for (int i = 0; i < half.Length; i++) data[i] = (float)BitConverter.UInt16BitsToHalf(half[i].value);
        return data;
    }

    public IDecodeSession StartDecode(int batch, DecodeWindowMode mode) => new OnnxDecodeSession(this, batch, mode);

    /// <summary>
    /// A decode session whose state starts from the given values (name -> float32 data and shape, rounded to float16
    /// for float16 inputs), validated first.
    /// </summary>
    public OnnxDecodeSession StartFrom(int batch, long textLength, IReadOnlyDictionary<string, (float[] Data, long[] Shape)> state)
    {
        var session = new OnnxDecodeSession(this, batch, DecodeWindowMode.MatchFullForward);
        try { session.Load(textLength, state); }
        catch { session.Dispose(); throw; }
        return session;
    }

    /// <summary>Every input name in the order <see cref="Run"/> takes the values: ids, mask, then the state.</summary>
    internal string[] InputNames { get; private init; } = [];
    private string[] OutputNames { get; init; } = [];

    /// <summary>One run; the options belong to the caller's decode session (made once, not per step: a step of a small model costs little more).</summary>
    internal IDisposableReadOnlyCollection<OrtValue> Run(RunOptions options, OrtValue[] inputs)
    {
        Interruption.ThrowIfRequested();
        try
        {
            return _session.Run(options, InputNames, inputs, OutputNames);
        }
        // An interrupt sets the options' Terminate flag (OnnxDecodeSession): the run stops with an error, which is the interrupt's.
        catch (OnnxRuntimeException) when (Interruption.IsRequested) { throw new OperationCanceledException(Interruption.Token); }
        catch (OnnxRuntimeException e) { throw new InvalidCheckpointException(_modelPath, "", $"ONNX Runtime failed to run it ({FirstLine(e.Message)})"); }
    }

    /// <summary>Ends the profiler's trace (opened with a profile prefix) and returns the trace file's path.</summary>
    public string EndProfiling() => _session.EndProfiling();

    public void Dispose()
    {
        _session.Dispose();
    }
}

/// <summary>
/// The decoding state of one batch in ONNX Runtime: the first step passes zero-length K/V and zero conv/SSM
/// state (the graph starts from the meta tokens' state), later steps the previous step's present outputs. The graph
/// returns at most window + slack keys for sliding groups, so the state stops growing there without a copy here.
/// </summary>
public sealed class OnnxDecodeSession : IDecodeSession
{
    private readonly OnnxRunner _runner;
    private readonly int _batch;
    private readonly DecodeWindowMode _mode;
    private readonly List<OrtValue> _owned = [];
    /// <summary>
    /// ONNX Runtime's own log of a failed run stays off stderr: a failure reaches the user once, as the exception this
    /// runner turns it into, and a run stopped by an interrupt (Terminate) is not an error at all.
    /// </summary>
    private readonly RunOptions _options = new() { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
    /// <summary>Stops a run in progress on an interrupt (ONNX Runtime checks the flag between kernels); disposed before the options.</summary>
    private readonly CancellationTokenRegistration _terminateOnInterrupt;
    private readonly IReadOnlyDictionary<int, int> _slidingWindows;
    private IDisposableReadOnlyCollection<OrtValue>? _previous;
    private OrtValue[] _past;

    internal OnnxDecodeSession(OnnxRunner runner, int batch, DecodeWindowMode mode)
    {
        _runner = runner;
        _batch = batch;
        _mode = mode;
        _slidingWindows = runner.Config.SlidingKvWindows;
        _terminateOnInterrupt = Interruption.Token.Register(() => _options.Terminate = true);
        _past = runner.PastNames.Select(name =>
        {
            var shape = runner.ExpectedShape(name, batch);
            for (int i = 0; i < shape.Length; i++) if (shape[i] < 0) shape[i] = 0;
            return Own(OnnxRunner.StateValue(runner.StateOf(name), new float[shape.Aggregate(1L, (a, b) => a * b)], shape));
        }).ToArray();
    }

    /// <summary>Text tokens processed so far (the attention mask's length).</summary>
    public long TextLength { get; private set; }

    /// <summary>Bytes of the decoding state the next step will read (every past input).</summary>
    public long StateBytes => _past.Select((v, i) => v.GetTensorTypeAndShape().ElementCount * _runner.StateOf(_runner.PastNames[i]).ElementBytes).Sum();

    /// <summary>Text keys a KV-owning layer holds now, as the next step will see them (the meta tokens are constants of the graph).</summary>
    public long CachedKeys(int layer)
    {
        int i = _runner.PastNames.ToList().IndexOf(HymbaOnnxNames.PastKey(layer));
        if (i < 0) throw new InvalidRequestException("layer", $"{layer} owns no K/V");
        return _past[i].GetTensorTypeAndShape().Shape[2];
    }

    /// <summary>The state the next step will read, as float32 data by input name (for <see cref="OnnxRunner.StartFrom"/>).</summary>
    public IReadOnlyDictionary<string, (float[] Data, long[] Shape)> SaveState() =>
        _runner.PastNames.Select((name, i) => (name, Data: OnnxRunner.Float32Data(_past[i]), Shape: _past[i].GetTensorTypeAndShape().Shape))
            .ToDictionary(e => e.name, e => (e.Data, e.Shape), StringComparer.Ordinal);

    private OrtValue Own(OrtValue value)
    {
        _owned.Add(value);
        return value;
    }

    internal void Load(long textLength, IReadOnlyDictionary<string, (float[] Data, long[] Shape)> state)
    {
        if (textLength < 0) throw new InvalidRequestException("text length", $"{textLength}, expected >= 0");
        foreach (var name in state.Keys)
            if (!_runner.PastNames.Contains(name)) throw new InvalidRequestException(name, "not a state input of this model");
        for (int i = 0; i < _past.Length; i++)
        {
            string name = _runner.PastNames[i];
            if (!state.TryGetValue(name, out var value)) throw new InvalidRequestException(name, "missing from the state");
            var expected = _runner.ExpectedShape(name, _batch);
            bool matches = value.Shape.Length == expected.Length && expected.Select((d, k) => d < 0 ? value.Shape[k] >= 0 : value.Shape[k] == d).All(x => x);
            if (!matches)
                throw new InvalidRequestException(name, $"shape [{string.Join(", ", value.Shape)}], expected [{string.Join(", ", expected.Select(d => d < 0 ? "any" : d.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]");
            long count = value.Shape.Aggregate(1L, (a, b) => checked(a * b));
            if (value.Data.Length != count) throw new InvalidRequestException(name, $"{value.Data.Length} values for shape [{string.Join(", ", value.Shape)}] ({count})");
            if (_runner.StateOf(name).IsKeyOrValue && value.Shape[2] > textLength)
                throw new InvalidRequestException(name, $"{value.Shape[2]} cached keys for a text of {textLength} tokens (the cache holds text tokens only)");
            _past[i] = Own(OnnxRunner.StateValue(_runner.StateOf(name), value.Data, value.Shape));
        }
        TextLength = textLength;
    }

    public LogitsResult Step(long[][] ids)
    {
        if (ids.Length != _batch) throw new InvalidRequestException("input_ids", $"{ids.Length} sequences for a session of batch {_batch}");
        int length = ids[0].Length;
        if (length == 0 || ids.Any(r => r.Length != length)) throw new InvalidRequestException("input_ids", "every sequence needs the same, non-zero number of tokens");
        int vocab = _runner.Config.VocabSize;
        foreach (var row in ids)
            foreach (long id in row)
                if (id < 0 || id >= vocab) throw new InvalidRequestException("input_ids", $"token id {id} is outside the vocabulary 0..{vocab - 1}");

        long total = TextLength + length;
        // The graph's RoPE tables end at the model's context (what onnxruntime-genai lets a sequence reach).
        if (total > _runner.Config.MaxPositionEmbeddings)
            throw new InvalidRequestException("input_ids", $"{total} text tokens exceed the export's context of {_runner.Config.MaxPositionEmbeddings} (max_position_embeddings)");
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids.SelectMany(r => r).ToArray(), [_batch, length]);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, checked((int)(_batch * total))).ToArray(), [_batch, total]);
        // The official generate() cuts a sliding cache to window - 1 keys before each decode step (one fewer than
        // the full forward reads).
        if (_mode == DecodeWindowMode.OfficialGenerate && TextLength > 0) TrimSliding();
        var outputs = _runner.Run(_options, [idsValue, maskValue, .. _past]);

        var logits = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        // The previous outputs (and any state we created) are no longer referenced once the new ones replace them.
        _previous?.Dispose();
        foreach (var v in _owned) v.Dispose();
        _owned.Clear();
        _previous = outputs;
        _past = outputs.Skip(1).ToArray();
        TextLength = total;
        return new LogitsResult(logits, _batch, length, vocab);
    }

    /// <summary>Drops the oldest text keys of each sliding group that holds more than its window - 1 (what the official generate() keeps).</summary>
    private void TrimSliding()
    {
        for (int i = 0; i < _past.Length; i++)
        {
            var state = _runner.StateOf(_runner.PastNames[i]);
            if (!state.IsKeyOrValue || !_slidingWindows.TryGetValue(state.Layer, out int window)) continue;
            var shape = _past[i].GetTensorTypeAndShape().Shape;
            long cached = shape[2], kept = window - 1;
            if (cached <= kept) continue;
            var data = _past[i].GetTensorMutableRawData();
            long rowBytes = shape[3] * state.ElementBytes, rows = shape[0] * shape[1];
            var trimmed = Own(OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, _past[i].GetTensorTypeAndShape().ElementDataType, [shape[0], shape[1], kept, shape[3]]));
            var target = trimmed.GetTensorMutableRawData();
            for (long r = 0; r < rows; r++)
                data.Slice(checked((int)((r * cached + cached - kept) * rowBytes)), checked((int)(kept * rowBytes)))
                    .CopyTo(target[checked((int)(r * kept * rowBytes))..]);
            _past[i] = trimmed;
        }
    }

    public void Dispose()
    {
        _previous?.Dispose();
        foreach (var v in _owned) v.Dispose();
        _owned.Clear();
        // Waits for a callback that is setting Terminate right now, so the options are never used after disposal.
        _terminateOnInterrupt.Dispose();
        _options.Dispose();
    }
}
