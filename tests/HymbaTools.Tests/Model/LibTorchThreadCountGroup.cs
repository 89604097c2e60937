namespace HymbaTools.Tests.Model;

/// <summary>
/// Tests that compare two libtorch forwards of one process (the self-checks: a batch against single rows) run alone:
/// libtorch's thread count is process-wide, and the in-process GPTQ and bit-budget tests pin it to one thread while
/// they run (TorchThreadPin), so a forward beside them can sum in another order than its twin (seen: 5.3e-4 on the
/// random "every-second-layer-reuses" variant against the self-check's 1e-4). In the CLI one command owns its process.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class LibTorchThreadCountGroup
{
    public const string Name = "libtorch thread count";
}
