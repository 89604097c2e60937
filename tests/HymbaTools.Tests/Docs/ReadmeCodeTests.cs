using System.Reflection;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using HymbaTools.Formats.Onnx;
using HymbaTools.Tests.Cli;
using HymbaTools.Tests.TestData;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace HymbaTools.Tests.Docs;

/// <summary>
/// The READMEs' code is the tested code: blocks are taken verbatim from README.md and from the README an export
/// writes, and run. The quick start's first commands run through the built CLI (as `hymba` on PATH); the
/// onnxruntime-genai loop (C#) is compiled with Roslyn and run on the example model's export, and must give
/// `hymba generate`'s text; the Python loop must make the same genai calls in the same order. The install blocks
/// (pack, tool install, single-file publish) run in .ci/install-check, in an empty HOME.
/// </summary>
public partial class ReadmeCodeTests : IDisposable
{
    private const string QuickStart = "## Install and quick start";
    private const string GenAiSection = "### Running an export with onnxruntime-genai";
    private static readonly string Example = Path.Combine(AppContext.BaseDirectory, "example-model");
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static string Readme() => File.ReadAllText(Path.Combine(MarkdownBlocks.RepositoryRoot(), "README.md"));

    [Fact]
    public async Task The_quick_start_first_commands_run_as_written()
    {
        var blocks = MarkdownBlocks.InSection(Readme(), QuickStart);
        Assert.Equal(["bash", "bash", "bash", "bash"], blocks.Select(b => b.Language));
        string first = blocks[3].Code;
        Assert.StartsWith("hymba inspect examples/hymba-austen", first, StringComparison.Ordinal);

        // `hymba` is the built CLI's app host; the block runs from a directory that has examples/hymba-austen.
        string bin = Directory.CreateDirectory(_dir.File("bin")).FullName, work = Directory.CreateDirectory(_dir.File("work")).FullName;
        File.CreateSymbolicLink(Path.Combine(bin, "hymba"), Path.Combine(AppContext.BaseDirectory, "hymba"));
        Directory.CreateDirectory(Path.Combine(work, "examples"));
        Directory.CreateSymbolicLink(Path.Combine(work, "examples", "hymba-austen"), Example);
        var info = new System.Diagnostics.ProcessStartInfo("bash") { WorkingDirectory = work, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "--noprofile", "--norc", "-euo", "pipefail", "-c", first }) info.ArgumentList.Add(a);
        info.Environment["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH");
        using var process = System.Diagnostics.Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(5)), "the first commands did not finish within 5 minutes");
        string errors = await stderr;
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{stdout}\n{errors}");

        Assert.Contains("PASSED", stdout, StringComparison.Ordinal);                                   // verify's self-checks
        Assert.True(File.Exists(Path.Combine(work, "austen-iq4_nl_m.gguf")));
        Assert.True(File.Exists(Path.Combine(work, "austen-int4", "model.onnx")));
        // generate's text continues the prompt (the block's last command, so the end of stdout).
        Assert.Contains("\nAnne Elliot", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void The_genai_loop_in_both_readmes_is_one_text_and_gives_hymbas_text_on_an_export()
    {
        string export = _dir.File("export");
        var run = CliRunner.Run("export", Example, "--format", "onnx", "--type", "int4", "-o", export, "--quiet");
        Assert.True(run.ExitCode == 0, run.Stderr);
        var exportBlocks = MarkdownBlocks.InSection(File.ReadAllText(Path.Combine(export, "README.md")), "## Run it with onnxruntime-genai (C#, NuGet Microsoft.ML.OnnxRuntimeGenAI 0.18)");
        var readmeBlocks = MarkdownBlocks.InSection(Readme(), GenAiSection);
        string csharp = Assert.Single(exportBlocks, b => b.Language == "csharp").Code;
        Assert.Equal(csharp, Assert.Single(readmeBlocks, b => b.Language == "csharp").Code);
        Assert.Equal(OnnxExportReadme.GenAiCSharpLoop, csharp);

        const string prompt = "Anne Elliot";
        var loop = Compile(csharp);
        string text = (string)loop.Invoke(null, [export, prompt])!;

        // hymba's greedy text for the same budget: genai's max_length 200 counts the prompt's tokens too.
        var ids = JsonNode.Parse(CliRunner.Run("generate", export, "--prompt", prompt, "--max-new-tokens", "1", "--json", "--quiet").Stdout)!["prompt_ids"]!.AsArray().Count;
        var hymba = CliRunner.Run("generate", export, "--prompt", prompt, "--temperature", "0", "--max-new-tokens", (200 - ids).ToString(System.Globalization.CultureInfo.InvariantCulture), "--json", "--quiet");
        Assert.True(hymba.ExitCode == 0, hymba.Stderr);
        Assert.Equal(JsonNode.Parse(hymba.Stdout)!["text"]!.GetValue<string>(), text);
        Assert.True(text.Length > 100, text);

        // Without the BOS line the loop feeds other ids and writes other text: the line is what makes them equal.
        string withoutBos = string.Join("\n", csharp.Split('\n').Where(l => !l.Contains("add_special_tokens", StringComparison.Ordinal)));
        Assert.NotEqual(csharp, withoutBos);
        Assert.NotEqual(text, (string)Compile(withoutBos).Invoke(null, [export, prompt])!);
    }

    [Fact]
    public void The_python_loop_makes_the_csharp_loops_genai_calls_in_the_same_order()
    {
        string python = OnnxExportReadme.GenAiPythonLoop;
        Assert.Equal(python, Assert.Single(MarkdownBlocks.InSection(Readme(), GenAiSection), b => b.Language == "python").Code);
        var csharpCalls = Calls(OnnxExportReadme.GenAiCSharpLoop, CSharpCall());
        var pythonCalls = Calls(python, PythonCall());
        Assert.Equal(13, csharpCalls.Count);
        Assert.Equal(csharpCalls.Select(c => PythonNames[c]), pythonCalls);
        // The same settings: BOS through add_special_tokens, max_length 200.
        Assert.Contains("add_special_tokens=\"true\"", python, StringComparison.Ordinal);
        Assert.Contains("max_length=200", python, StringComparison.Ordinal);
        Assert.Contains("[\"add_special_tokens\"] = \"true\"", OnnxExportReadme.GenAiCSharpLoop, StringComparison.Ordinal);
        Assert.Contains("\"max_length\", 200", OnnxExportReadme.GenAiCSharpLoop, StringComparison.Ordinal);
    }

    private static readonly Dictionary<string, string> PythonNames = new(StringComparer.Ordinal)
    {
        ["Model"] = "Model", ["Tokenizer"] = "Tokenizer", ["UpdateOptions"] = "update_options", ["Encode"] = "encode",
        ["GeneratorParams"] = "GeneratorParams", ["SetSearchOption"] = "set_search_options", ["Generator"] = "Generator",
        ["AppendTokenSequences"] = "append_tokens", ["CreateStream"] = "create_stream", ["IsDone"] = "is_done",
        ["GenerateNextToken"] = "generate_next_token", ["Decode"] = "decode", ["GetNextTokens"] = "get_next_tokens",
    };

    [GeneratedRegex(@"(?:new (Model|Tokenizer|GeneratorParams|Generator)|\.(UpdateOptions|Encode|SetSearchOption|AppendTokenSequences|CreateStream|IsDone|GenerateNextToken|Decode|GetNextTokens))\(")]
    private static partial Regex CSharpCall();

    [GeneratedRegex(@"(?:og\.(Model|Tokenizer|GeneratorParams|Generator)|\.(update_options|encode|set_search_options|append_tokens|create_stream|is_done|generate_next_token|decode|get_next_tokens))\(")]
    private static partial Regex PythonCall();

    /// <summary>The genai calls in the order they are evaluated (an argument's call before the call it is passed to).</summary>
    private static List<string> Calls(string code, Regex call) =>
        [.. call.Matches(code).Select(m => (Name: m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value, Close: ClosingParenthesis(code, m.Index + m.Length - 1)))
            .OrderBy(c => c.Close).Select(c => c.Name)];

    private static int ClosingParenthesis(string code, int open)
    {
        int depth = 0;
        for (int i = open; i < code.Length; i++)
        {
            if (code[i] == '(') depth++;
            else if (code[i] == ')' && --depth == 0) return i;
        }
        throw new InvalidOperationException("unbalanced parentheses");
    }

    /// <summary>The block as the body of a method (exportDirectory, prompt) returning its `text`, compiled and loaded.</summary>
    private static MethodInfo Compile(string block)
    {
        string source = $$"""
            using System;
            using System.Collections.Generic;
            using System.Text;
            using Microsoft.ML.OnnxRuntimeGenAI;

            public static class ReadmeLoop
            {
                public static string Run(string exportDirectory, string prompt)
                {
            {{block}}
                    return text.ToString();
                }
            }
            """;
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Append(typeof(Microsoft.ML.OnnxRuntimeGenAI.Model).Assembly.Location)
            .Distinct(StringComparer.Ordinal).Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("ReadmeLoop" + Guid.NewGuid().ToString("N"), [CSharpSyntaxTree.ParseText(source)], references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        using var image = new MemoryStream();
        var emitted = compilation.Emit(image);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        return Assembly.Load(image.ToArray()).GetType("ReadmeLoop")!.GetMethod("Run")!;
    }
}
