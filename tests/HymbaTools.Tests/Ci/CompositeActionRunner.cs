using System.Diagnostics;
using System.Text.RegularExpressions;
using YamlDotNet.RepresentationModel;

namespace HymbaTools.Tests.Ci;

/// <summary>
/// Runs a composite action's steps the way GitHub's runner does, as far as this machine can: inputs with their
/// defaults, `${{ }}` expressions substituted (inputs.*, github.action_path/workspace, runner.temp/os/arch,
/// steps.ID.outputs.*: anything else is refused, so the action cannot use what is not tested), each `run:` step
/// as `bash --noprofile --norc -eo pipefail` in the workspace with its env and fresh GITHUB_OUTPUT and
/// GITHUB_STEP_SUMMARY files (outputs parsed as the runner parses them, name=value and name&lt;&lt;DELIMITER
/// blocks; summaries joined into the job summary), later steps skipped after a failure, and the action's outputs
/// evaluated at the end. `uses:` steps (setup-dotnet, cache) cannot run here: they are skipped and listed.
/// </summary>
internal sealed partial class CompositeActionRunner
{
    private readonly YamlMappingNode _action;

    public CompositeActionRunner(string actionFile)
    {
        var yaml = new YamlStream();
        using (var reader = new StreamReader(actionFile)) yaml.Load(reader);
        _action = (YamlMappingNode)yaml.Documents[0].RootNode;
        if (Scalar(Map(_action, "runs"), "using") != "composite") throw new NotSupportedException("only composite actions");
        ActionPath = Path.GetDirectoryName(Path.GetFullPath(actionFile))!;
    }

    public string ActionPath { get; }

    public sealed record StepRun(string Name, int ExitCode, string Output);

    public sealed record Result(IReadOnlyDictionary<string, string> Outputs, string Summary, IReadOnlyList<string> SkippedUses, IReadOnlyList<StepRun> Steps)
    {
        /// <summary>The step that failed (the job's step fails with it), or null.</summary>
        public StepRun? Failed => Steps.FirstOrDefault(s => s.ExitCode != 0);
    }

    private static YamlMappingNode Map(YamlMappingNode node, string key) => (YamlMappingNode)node.Children[new YamlScalarNode(key)];
    private static string? Scalar(YamlMappingNode node, string key) =>
        node.Children.TryGetValue(new YamlScalarNode(key), out var value) ? ((YamlScalarNode)value).Value : null;
    private static IEnumerable<(string Key, YamlNode Value)> Entries(YamlMappingNode node) =>
        node.Children.Select(kv => (((YamlScalarNode)kv.Key).Value!, kv.Value));

    /// <summary>The inputs the action declares, with their defaults (null when required without a default).</summary>
    public IReadOnlyDictionary<string, string?> DeclaredInputs =>
        Entries(Map(_action, "inputs")).ToDictionary(e => e.Key, e => Scalar((YamlMappingNode)e.Value, "default"));

    public IReadOnlyList<string> DeclaredOutputs => Entries(Map(_action, "outputs")).Select(e => e.Key).ToList();

    public Result Run(IReadOnlyDictionary<string, string> given, string workspace, string runnerTemp)
    {
        var inputs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, fallback) in DeclaredInputs)
            inputs[name] = given.TryGetValue(name, out var value) ? value : fallback ?? throw new ArgumentException($"input {name} is required");
        foreach (var name in given.Keys.Where(k => !DeclaredInputs.ContainsKey(k))) throw new ArgumentException($"the action has no input {name}");
        var stepOutputs = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        string Evaluate(string text) => Expression().Replace(text, m =>
        {
            string[] path = m.Groups[1].Value.Trim().Split('.');
            return path switch
            {
                ["inputs", var name] => inputs[name],
                ["github", "action_path"] => ActionPath,
                ["github", "workspace"] => workspace,
                ["runner", "temp"] => runnerTemp,
                ["runner", "os"] => "Linux",
                ["runner", "arch"] => "X64",
                ["steps", var id, "outputs", var name] => stepOutputs.GetValueOrDefault(id)?.GetValueOrDefault(name) ?? "",
                _ => throw new NotSupportedException($"expression '{m.Value}' is not one this runner evaluates"),
            };
        });

        var summary = new System.Text.StringBuilder();
        var skipped = new List<string>();
        var steps = new List<StepRun>();
        int index = 0;
        foreach (YamlMappingNode step in ((YamlSequenceNode)Map(_action, "runs").Children[new YamlScalarNode("steps")]).Cast<YamlMappingNode>())
        {
            index++;
            if (Scalar(step, "if") is { } condition) throw new NotSupportedException($"step {index}: if: {condition} is not evaluated here");
            if (Scalar(step, "uses") is { } uses)
            {
                skipped.Add(uses);
                continue;
            }
            if (Scalar(step, "shell") != "bash") throw new NotSupportedException($"step {index}: composite run steps need shell: bash");
            string id = Scalar(step, "id") ?? $"__step{index}";
            string script = Path.Combine(runnerTemp, $"step-{index}.sh"), output = Path.Combine(runnerTemp, $"output-{index}"), stepSummary = Path.Combine(runnerTemp, $"summary-{index}");
            File.WriteAllText(script, Evaluate(Scalar(step, "run")!));
            File.WriteAllText(output, "");
            File.WriteAllText(stepSummary, "");
            var info = new ProcessStartInfo("bash") { WorkingDirectory = workspace, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "--noprofile", "--norc", "-eo", "pipefail", script }) info.ArgumentList.Add(a);
            info.Environment["GITHUB_OUTPUT"] = output;
            info.Environment["GITHUB_STEP_SUMMARY"] = stepSummary;
            info.Environment["GITHUB_ACTION_PATH"] = ActionPath;
            info.Environment["GITHUB_WORKSPACE"] = workspace;
            info.Environment["RUNNER_TEMP"] = runnerTemp;
            info.Environment["RUNNER_OS"] = "Linux";
            if (step.Children.TryGetValue(new YamlScalarNode("env"), out var env))
                foreach (var (name, value) in Entries((YamlMappingNode)env)) info.Environment[name] = Evaluate(((YamlScalarNode)value).Value ?? "");
            using var process = Process.Start(info)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"step {Scalar(step, "name") ?? id} ran longer than 5 minutes");
            }
            stepOutputs[id] = ParseOutputs(File.ReadAllText(output));
            summary.Append(File.ReadAllText(stepSummary));
            steps.Add(new StepRun(Scalar(step, "name") ?? id, process.ExitCode, stdout.Result + stderr.Result));
            if (process.ExitCode != 0) break;   // later steps are skipped, as on the runner (none of them says if: always())
        }
        var outputs = Entries(Map(_action, "outputs")).ToDictionary(e => e.Key, e => Evaluate(Scalar((YamlMappingNode)e.Value, "value")!));
        return new Result(outputs, summary.ToString(), skipped, steps);
    }

    /// <summary>GITHUB_OUTPUT's two forms: name=value lines, and name&lt;&lt;DELIMITER ... DELIMITER blocks.</summary>
    internal static Dictionary<string, string> ParseOutputs(string text)
    {
        var outputs = new Dictionary<string, string>(StringComparer.Ordinal);
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.Length == 0) continue;
            int heredoc = line.IndexOf("<<", StringComparison.Ordinal), equals = line.IndexOf('=', StringComparison.Ordinal);
            if (heredoc > 0 && (equals < 0 || heredoc < equals))
            {
                string name = line[..heredoc], delimiter = line[(heredoc + 2)..];
                var value = new List<string>();
                while (++i < lines.Length && lines[i] != delimiter) value.Add(lines[i]);
                if (i >= lines.Length) throw new FormatException($"output {name}: no closing {delimiter}");
                outputs[name] = string.Join('\n', value);
            }
            else if (equals > 0) outputs[line[..equals]] = line[(equals + 1)..];
            else throw new FormatException($"GITHUB_OUTPUT line '{line}' is neither name=value nor name<<DELIMITER");
        }
        return outputs;
    }

    [GeneratedRegex(@"\$\{\{(.*?)\}\}")]
    private static partial Regex Expression();
}
