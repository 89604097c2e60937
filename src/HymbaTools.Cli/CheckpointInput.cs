using HymbaTools.Checkpoints;

namespace HymbaTools.Cli;

/// <summary>
/// What a command's checkpoint argument names: an existing file or directory as it is (a local path wins over a Hub
/// id of the same spelling), else a Hub id ORG/NAME[@REVISION] resolved from the local HuggingFace cache as
/// huggingface_hub resolves it offline, else the argument unchanged (its reader then says what is wrong with it).
/// Nothing is downloaded: an id the cache lacks is an input error naming where it looked and the download command.
/// </summary>
internal static class CheckpointInput
{
    /// <summary>Appended to the description of every argument that takes a checkpoint.</summary>
    public const string HubHelp = "; or a Hub id ORG/NAME[@REVISION] (branch, tag or full commit hash; default main) read from the local HuggingFace cache " +
                                  "($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub), never downloaded; a local path of the same name wins";

    private static readonly AsyncLocal<Func<string, string?>?> EnvironmentOverride = new();

    /// <summary>Environment lookups for this call of the CLI (tests run it in-process with their own cache location); null: the process's.</summary>
    public static IDisposable UseEnvironment(Func<string, string?>? environment)
    {
        var previous = EnvironmentOverride.Value;
        EnvironmentOverride.Value = environment;
        return new Restore(() => EnvironmentOverride.Value = previous);
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    /// <summary>The cache as this call of the CLI sees it.</summary>
    public static HubCache Cache() => new(EnvironmentOverride.Value ?? Environment.GetEnvironmentVariable);

    /// <summary>The path a checkpoint argument stands for; a note on stderr says which snapshot a Hub id resolved to.</summary>
    public static string Resolve(string argument, TextWriter stderr)
    {
        if (File.Exists(argument) || Directory.Exists(argument)) return argument;
        if (!HubCache.TryParse(argument, out string repoId, out string? revision)) return argument;
        var snapshot = Cache().Resolve(repoId, revision);
        stderr.WriteLine($"note: {argument}: commit {snapshot.Commit} from the local HuggingFace cache ({snapshot.Directory})");
        return snapshot.Directory;
    }
}
