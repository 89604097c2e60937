using HymbaTools.Checkpoints;
using HymbaTools.Common;
using HymbaTools.Tests.TestData;

namespace HymbaTools.Tests.Checkpoints;

/// <summary>
/// The local HuggingFace cache found and read as huggingface_hub does (constants.py, snapshot_download offline):
/// which directory each setting selects, which ids and revisions are accepted, and what a miss says.
/// </summary>
public class HubCacheTests : IDisposable
{
    private readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    private static Func<string, string?> Env(params (string Name, string Value)[] variables) =>
        name => variables.Where(v => v.Name == name).Select(v => v.Value).FirstOrDefault();

    [Theory]
    [InlineData("HF_HUB_CACHE=/c/hub;HUGGINGFACE_HUB_CACHE=/legacy;HF_HOME=/h;XDG_CACHE_HOME=/x;HOME=/home/u", "/c/hub", "HF_HUB_CACHE")]
    [InlineData("HUGGINGFACE_HUB_CACHE=/legacy;HF_HOME=/h;XDG_CACHE_HOME=/x;HOME=/home/u", "/legacy", "HUGGINGFACE_HUB_CACHE")]
    [InlineData("HF_HOME=/h;XDG_CACHE_HOME=/x;HOME=/home/u", "/h/hub", "HF_HOME")]
    [InlineData("XDG_CACHE_HOME=/x;HOME=/home/u", "/x/huggingface/hub", "XDG_CACHE_HOME")]
    [InlineData("HOME=/home/u", "/home/u/.cache/huggingface/hub", "~/.cache")]
    [InlineData("HOME=/home/u/", "/home/u/.cache/huggingface/hub", "~/.cache")]
    // expanduser and expandvars as Python applies them; an unset variable stays as written
    [InlineData("HF_HOME=~/hf;HOME=/home/u", "/home/u/hf/hub", "HF_HOME")]
    [InlineData("HF_HUB_CACHE=$DATA/hub;DATA=/mnt/d;HOME=/home/u", "/mnt/d/hub", "HF_HUB_CACHE")]
    [InlineData("HF_HUB_CACHE=${DATA}/hub;DATA=/mnt/d;HOME=/home/u", "/mnt/d/hub", "HF_HUB_CACHE")]
    [InlineData("HF_HUB_CACHE=$UNSET/hub;HOME=/home/u", "$UNSET/hub", "HF_HUB_CACHE")]
    // XDG_CACHE_HOME is only the default of HF_HOME: expanded once HF_HOME is built from it
    [InlineData("XDG_CACHE_HOME=~/xdg;HOME=/home/u", "/home/u/xdg/huggingface/hub", "XDG_CACHE_HOME")]
    public void The_cache_directory_follows_huggingface_hub_precedence(string settings, string expected, string source)
    {
        var pairs = settings.Split(';').Select(p => p.Split('=', 2)).Select(p => (p[0], p[1])).ToArray();
        var cache = new HubCache(Env(pairs));
        Assert.Equal(expected, cache.Directory);
        Assert.Equal(source, cache.DirectorySource);
    }

    [Fact]
    public void A_variable_set_to_the_empty_string_counts_as_set_as_in_os_getenv()
    {
        // os.getenv("XDG_CACHE_HOME", default) returns "" when set empty: huggingface_hub then uses a relative huggingface/hub.
        Assert.Equal(Path.Combine("huggingface", "hub"), new HubCache(Env(("XDG_CACHE_HOME", ""), ("HOME", "/home/u"))).Directory);
    }

    [Theory]
    [InlineData("nvidia/Hymba-1.5B-Base", "nvidia/Hymba-1.5B-Base", null)]
    [InlineData("nvidia/Hymba-1.5B-Base@main", "nvidia/Hymba-1.5B-Base", "main")]
    [InlineData("org/name@refs/pr/1", "org/name", "refs/pr/1")]
    [InlineData("a_b/c.d@0123456789abcdef0123456789abcdef01234567", "a_b/c.d", "0123456789abcdef0123456789abcdef01234567")]
    public void Hub_ids_parse(string text, string repoId, string? revision)
    {
        Assert.True(HubCache.TryParse(text, out string id, out string? rev));
        Assert.Equal(repoId, id);
        Assert.Equal(revision, rev);
    }

    [Theory]
    [InlineData("model")]                 // no organisation: a path
    [InlineData("./org/name")]
    [InlineData("/abs/path")]
    [InlineData("a/b/c")]
    [InlineData("org--x/name")]           // "--" is the cache's separator, refused by the Hub
    [InlineData("org/na..me")]
    [InlineData("-org/name")]
    [InlineData("org/name.")]
    [InlineData("org/name@")]
    [InlineData("org/name@../../etc")]    // a revision never leaves refs/
    [InlineData("org/name@/abs")]
    public void Paths_and_malformed_ids_are_not_hub_ids(string text) => Assert.False(HubCache.TryParse(text, out _, out _));

    private (HubCache Cache, HubCacheLayout Layout, string Main, string V1) Layout()
    {
        var layout = new HubCacheLayout(_dir.File("hub"));
        string main = HubCacheLayout.Commit("main"), v1 = HubCacheLayout.Commit("v1");
        layout.AddSnapshot("org/tiny", main, Fixtures.TinyB, "main");
        layout.AddSnapshot("org/tiny", v1, Fixtures.TinyA, "v1", "refs/pr/1");
        return (new HubCache(layout.Environment), layout, main, v1);
    }

    [Fact]
    public void Revisions_resolve_through_refs_or_as_full_commit_hashes()
    {
        var (cache, layout, main, v1) = Layout();
        string snapshots = Path.Combine(layout.RepositoryFolder("org/tiny"), "snapshots");
        Assert.Equal(new HubSnapshot("org/tiny", main, Path.Combine(snapshots, main)), cache.Resolve("org/tiny"));
        Assert.Equal(main, cache.Resolve("org/tiny", "main").Commit);
        Assert.Equal(v1, cache.Resolve("org/tiny", "v1").Commit);
        Assert.Equal(v1, cache.Resolve("org/tiny", "refs/pr/1").Commit);
        Assert.Equal(v1, cache.Resolve("org/tiny", v1).Commit);
        // the snapshot's files are symlinks into blobs/, and readable through them
        string config = Path.Combine(snapshots, main, "config.json");
        Assert.NotNull(new FileInfo(config).LinkTarget);
        Assert.Equal(File.ReadAllText(Path.Combine(Fixtures.TinyB, "config.json")), File.ReadAllText(config));
    }

    [Fact]
    public void A_missing_repository_says_where_it_looked_and_how_to_download_it_in_one_line()
    {
        var (cache, _, _, _) = Layout();
        var e = Assert.Throws<InvalidCheckpointException>(() => cache.Resolve("org/absent"));
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith("org/absent: ", e.Message, StringComparison.Ordinal);
        Assert.Contains(cache.Directory + " (from HF_HUB_CACHE)", e.Message, StringComparison.Ordinal);
        Assert.Contains("models--org--absent", e.Message, StringComparison.Ordinal);
        Assert.Contains("`huggingface-cli download org/absent`", e.Message, StringComparison.Ordinal);
        var tagged = Assert.Throws<InvalidCheckpointException>(() => cache.Resolve("org/absent", "v2"));
        Assert.Contains("`huggingface-cli download org/absent --revision v2`", tagged.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_revision_lists_what_the_cache_holds_and_an_abbreviated_hash_is_explained()
    {
        var (cache, _, main, v1) = Layout();
        var e = Assert.Throws<InvalidCheckpointException>(() => cache.Resolve("org/tiny", "v9"));
        Assert.Contains("revision 'v9'", e.Message, StringComparison.Ordinal);
        Assert.Contains("cached refs: main, refs/pr/1, v1", e.Message, StringComparison.Ordinal);
        Assert.Contains(main, e.Message, StringComparison.Ordinal);
        Assert.Contains("--revision v9", e.Message, StringComparison.Ordinal);
        var shortHash = Assert.Throws<InvalidCheckpointException>(() => cache.Resolve("org/tiny", v1[..7]));
        Assert.Contains("only full 40-digit hashes", shortHash.Message, StringComparison.Ordinal);
        var unknownCommit = Assert.Throws<InvalidCheckpointException>(() => cache.Resolve("org/tiny", new string('0', 40)));
        Assert.Contains("has no snapshot", unknownCommit.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_ref_that_holds_no_commit_and_a_snapshot_link_to_a_missing_blob_are_input_errors()
    {
        var (cache, layout, main, _) = Layout();
        string repo = layout.RepositoryFolder("org/tiny");
        File.WriteAllText(Path.Combine(repo, "refs", "broken"), "not a hash");
        var badRef = Assert.Throws<InvalidCheckpointException>(() => cache.Resolve("org/tiny", "broken"));
        Assert.Contains("not a commit hash", badRef.Message, StringComparison.Ordinal);

        string link = Path.Combine(repo, "snapshots", main, "model-00002-of-00002.safetensors");
        File.Delete(Path.Combine(Path.GetDirectoryName(link)!, new FileInfo(link).LinkTarget!));
        var dangling = Assert.Throws<InvalidCheckpointException>(() => cache.Resolve("org/tiny"));
        Assert.StartsWith(link + ": links to ", dangling.Message, StringComparison.Ordinal);
        Assert.Contains("huggingface-cli download org/tiny", dangling.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_snapshot_directory_names_its_repository_and_commit_however_it_was_reached()
    {
        var (cache, _, main, _) = Layout();
        var snapshot = cache.Resolve("org/tiny");
        Assert.Equal(snapshot, HubSnapshot.FromDirectory(snapshot.Directory + "/"));
        Assert.Equal("tiny", snapshot.Name);
        Assert.Null(HubSnapshot.FromDirectory(Fixtures.TinyB));
        Assert.Null(HubSnapshot.FromDirectory(Path.Combine(_dir.Path, "models--org--tiny", "snapshots", "not-a-hash")));
        Assert.Equal(main, CheckpointDirectory.Locate(snapshot.Directory).Hub?.Commit);
    }
}
