namespace HymbaTools.Common;

/// <summary>
/// Base of every "the input is wrong" error. The message always has one shape,
/// <c>{file}: {field}: {what was found} (expected {what})</c>, so that a user (or a CI log grep)
/// can find the offending file and tensor/key without a stack trace. The CLI maps these to exit code 2.
/// </summary>
public abstract class HymbaInputException : Exception
{
    protected HymbaInputException(string filePath, string field, string problem, Exception? inner = null)
        : base(Format(filePath, field, problem), inner)
    {
        FilePath = filePath;
        Field = field;
        Problem = problem;
    }

    /// <summary>The file (or directory) that holds the bad input.</summary>
    public string FilePath { get; }

    /// <summary>JSON path, tensor name, GGUF key or structural part ("header") that is wrong.</summary>
    public string Field { get; }

    /// <summary>What was found and what was expected.</summary>
    public string Problem { get; }

    /// <summary>True when the input is well-formed but uses a feature this tool does not implement.</summary>
    public virtual bool IsUnsupported => false;

    private static string Format(string filePath, string field, string problem)
    {
        // A request error names the option (or input) alone: "error: --type: ...".
        if (string.IsNullOrEmpty(filePath)) return string.IsNullOrEmpty(field) ? problem : $"{field}: {problem}";
        return string.IsNullOrEmpty(field) ? $"{filePath}: {problem}" : $"{filePath}: {field}: {problem}";
    }
}

/// <summary>config.json (or another JSON settings file) is missing, malformed or inconsistent.</summary>
public sealed class InvalidConfigException : HymbaInputException
{
    public InvalidConfigException(string filePath, string field, string problem, bool unsupported = false, Exception? inner = null)
        : base(filePath, field, problem, inner) => IsUnsupported = unsupported;

    public override bool IsUnsupported { get; }
}

/// <summary>A safetensors file, a shard index or a golden-data file is malformed or does not match the config.</summary>
public sealed class InvalidCheckpointException : HymbaInputException
{
    public InvalidCheckpointException(string filePath, string field, string problem, bool unsupported = false, Exception? inner = null)
        : base(filePath, field, problem, inner) => IsUnsupported = unsupported;

    public override bool IsUnsupported { get; }
}

/// <summary>A request that cannot be satisfied for this model (bad option value given the checkpoint, etc.).</summary>
public sealed class InvalidRequestException : HymbaInputException
{
    public InvalidRequestException(string field, string problem) : base("", field, problem) { }
}
