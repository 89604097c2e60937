using System.Text.Json;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Ci;

/// <summary>
/// action.yml (the composite action other repositories call) run step by step as GitHub's runner runs it, on the
/// example model: outputs, job summary, gate failures, the matrix's gather by `report merge`, bad input. The
/// `uses:` steps cannot run here: setup-dotnet is this machine's SDK, and the cache step's restore is played by
/// putting the already-built CLI's command where the cache would restore the installed tool (the build step then finds
/// it and skips the pack and install, as on a cache hit). The cache-miss path (the tool package packed and installed)
/// runs in .ci/install-check; the hosted runner itself is not tested here (README).
/// </summary>
public class GitHubActionTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static string RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "action.yml")) && File.Exists(Path.Combine(d.FullName, "HymbaTools.sln"))) return d.FullName;
        throw new InvalidOperationException("action.yml not found above " + AppContext.BaseDirectory);
    }

    private (CompositeActionRunner Runner, string Workspace, string RunnerTemp) Prepare()
    {
        var runner = new CompositeActionRunner(Path.Combine(RepositoryRoot(), "action.yml"));
        string workspace = Directory.CreateDirectory(_dir.File("workspace")).FullName, runnerTemp = Directory.CreateDirectory(_dir.File("runner-temp")).FullName;
        // The model repository's checkout holds the checkpoint; the cache step "restores" the built CLI.
        Directory.CreateSymbolicLink(Path.Combine(workspace, "hymba-austen"), Path.Combine(AppContext.BaseDirectory, "example-model"));
        // An installed tool's command: the built app host (it finds hymba.dll beside its real path).
        string tools = Directory.CreateDirectory(Path.Combine(runnerTemp, "hymbatools-build", "tools")).FullName;
        File.CreateSymbolicLink(Path.Combine(tools, "hymba"), Path.Combine(AppContext.BaseDirectory, "hymba"));
        return (runner, workspace, runnerTemp);
    }

    private static Dictionary<string, string> Convert(string only, params (string Key, string Value)[] more)
    {
        var inputs = new Dictionary<string, string>
        {
            ["checkpoint"] = "hymba-austen", ["targets"] = "gguf:q8_0,onnx:int8", ["only"] = only, ["out"] = "report-" + only.Replace(':', '-'),
            ["max-tokens"] = "256", ["window"] = "64",
        };
        foreach (var (k, v) in more) inputs[k] = v;
        return inputs;
    }

    [Fact]
    public void The_action_converts_gates_summarises_and_its_matrix_reports_merge()
    {
        var (runner, workspace, runnerTemp) = Prepare();
        Assert.Equal(["report-dir", "passed", "exit-code", "gate-failures", "hymba"], runner.DeclaredOutputs);

        // A job that holds its gates.
        var pass = runner.Run(Convert("gguf:q8_0", ("max-kl", "0.05"), ("min-top1", "0.85"), ("max-ppl-ratio", "1.05")), workspace, runnerTemp);
        Assert.Null(pass.Failed);
        Assert.Equal(["actions/setup-dotnet@v4", "actions/cache@v4"], pass.SkippedUses);
        Assert.Contains(pass.Steps, s => s.Output.Contains("hymba: restored from the cache", StringComparison.Ordinal));
        Assert.Equal("true", pass.Outputs["passed"]);
        Assert.Equal("0", pass.Outputs["exit-code"]);
        Assert.Equal("", pass.Outputs["gate-failures"]);
        Assert.Equal(Path.Combine(workspace, "report-gguf-q8_0"), pass.Outputs["report-dir"]);
        Assert.Equal($"{runnerTemp}/hymbatools-build/tools/hymba", pass.Outputs["hymba"]);
        var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(pass.Outputs["report-dir"], "report.json"))).RootElement;
        Assert.Equal("gguf:q8_0", Assert.Single(report.GetProperty("targets").EnumerateArray()).GetProperty("name").GetString());
        Assert.StartsWith("# Conversion report", pass.Summary, StringComparison.Ordinal);
        Assert.Contains("| gguf:q8_0 |", pass.Summary, StringComparison.Ordinal);
        Assert.Contains("Every gate holds.", pass.Summary, StringComparison.Ordinal);

        // A job whose target misses a gate: the outputs and summary say which, and the action's last step fails.
        var fail = runner.Run(Convert("onnx:int8", ("max-kl", "1e-9")), workspace, runnerTemp);
        Assert.Equal("false", fail.Outputs["passed"]);
        Assert.Equal("1", fail.Outputs["exit-code"]);
        Assert.StartsWith("gate failed: onnx:int8: mean KL ", fail.Outputs["gate-failures"], StringComparison.Ordinal);
        Assert.Contains("- gate failed: onnx:int8: mean KL", fail.Summary, StringComparison.Ordinal);
        Assert.Equal(("Fail on a failed gate or error", 1), (fail.Failed?.Name, fail.Failed?.ExitCode));

        // The gather job: report merge over the per-target reports (a glob and a file); with fail-on-gate false the
        // action succeeds and only its outputs say that a gate failed.
        var merged = runner.Run(new Dictionary<string, string> { ["merge"] = "report-gguf-* report-onnx-int8/report.json", ["out"] = "merged", ["fail-on-gate"] = "false" }, workspace, runnerTemp);
        Assert.Null(merged.Failed);
        Assert.Equal("false", merged.Outputs["passed"]);
        Assert.Equal("1", merged.Outputs["exit-code"]);
        var joined = JsonDocument.Parse(File.ReadAllText(Path.Combine(workspace, "merged", "report.json"))).RootElement;
        Assert.Equal(["gguf:q8_0", "onnx:int8"], joined.GetProperty("targets").EnumerateArray().Select(t => t.GetProperty("name").GetString()));
        Assert.StartsWith("gate failed: onnx:int8:", merged.Outputs["gate-failures"], StringComparison.Ordinal);
        Assert.Contains("| onnx:int8 |", merged.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_input_fails_the_action_with_hymbas_message_in_the_summary()
    {
        var (runner, workspace, runnerTemp) = Prepare();
        var missing = runner.Run(new Dictionary<string, string> { ["checkpoint"] = "no-such-model", ["targets"] = "gguf:q8_0" }, workspace, runnerTemp);
        Assert.Equal("2", missing.Outputs["exit-code"]);
        Assert.Equal("false", missing.Outputs["passed"]);
        Assert.Equal(2, missing.Failed?.ExitCode);
        Assert.Contains("## hymba failed (exit 2)", missing.Summary, StringComparison.Ordinal);
        Assert.Contains("error: no-such-model: no such file or directory", missing.Summary, StringComparison.Ordinal);

        var nothing = runner.Run(new Dictionary<string, string>(), workspace, runnerTemp);
        Assert.Equal("2", nothing.Outputs["exit-code"]);
        Assert.Contains("the action needs checkpoint and targets (or merge)", nothing.Summary, StringComparison.Ordinal);
    }

    /// <summary>examples/ci/convert.yml: the action does the fan-out (one target per matrix job) and the gather (report merge), with inputs it declares.</summary>
    [Fact]
    public void The_example_workflow_fans_out_with_the_action_and_gathers_with_report_merge()
    {
        string root = RepositoryRoot();
        var declared = new CompositeActionRunner(Path.Combine(root, "action.yml")).DeclaredInputs;
        var yaml = new YamlDotNet.RepresentationModel.YamlStream();
        using (var reader = new StreamReader(Path.Combine(root, "examples", "ci", "convert.yml"))) yaml.Load(reader);
        var jobs = (YamlDotNet.RepresentationModel.YamlMappingNode)((YamlDotNet.RepresentationModel.YamlMappingNode)yaml.Documents[0].RootNode)["jobs"];
        Dictionary<string, string> ActionStep(string job)
        {
            var steps = (YamlDotNet.RepresentationModel.YamlSequenceNode)((YamlDotNet.RepresentationModel.YamlMappingNode)jobs[job])["steps"];
            var step = (YamlDotNet.RepresentationModel.YamlMappingNode)Assert.Single(steps, s => ((YamlDotNet.RepresentationModel.YamlMappingNode)s).Children.TryGetValue(new YamlDotNet.RepresentationModel.YamlScalarNode("uses"), out var u) && u.ToString() == "./");
            return ((YamlDotNet.RepresentationModel.YamlMappingNode)step["with"]).Children.ToDictionary(kv => kv.Key.ToString(), kv => kv.Value.ToString());
        }
        var convert = ActionStep("convert");
        var gather = ActionStep("report");
        Assert.All(convert.Keys.Concat(gather.Keys), key => Assert.True(declared.ContainsKey(key), $"the action has no input {key}"));
        Assert.Equal("${{ matrix.target }}", convert["only"]);
        Assert.Equal("reports/*/report.json", gather["merge"]);
    }

    [Fact]
    public void Inputs_reach_the_scripts_only_through_the_environment()
    {
        // A hostile input must not become script text: every ${{ inputs.* }} sits in an env: value.
        string action = File.ReadAllText(Path.Combine(RepositoryRoot(), "action.yml"));
        var runBlocks = action.Split("run: |").Skip(1).Select(b => b.Split("\n    - ")[0]);
        Assert.All(runBlocks, block => Assert.DoesNotContain("${{", block, StringComparison.Ordinal));
        Assert.Equal(
            new Dictionary<string, string> { ["a"] = "1", ["multi"] = "x\ny", ["b"] = "two=2" },
            CompositeActionRunner.ParseOutputs("a=1\nmulti<<EOF_1\nx\ny\nEOF_1\nb=two=2\n"));
    }
}
