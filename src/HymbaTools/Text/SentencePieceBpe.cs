using System.Globalization;
using System.Text;

namespace HymbaTools.Text;

/// <summary>
/// SentencePiece's BPE encoding (bpe_model.cc), reproduced exactly: the text is normalised as the model says (dummy
/// prefix, spaces as "▁"), split into characters, and adjacent symbols are merged while their concatenation is a
/// normal piece, the highest-scoring pair first and, between equal scores, the leftmost (SentencePiece's agenda order);
/// a symbol that is no piece becomes its UTF-8 bytes' pieces (byte fallback) or &lt;unk&gt;. Microsoft.ML.Tokenizers 2.0.1
/// breaks equal-score ties the other way, so runs of one character ("ssss", "----", 17+ spaces in Llama-2) came out
/// different from SentencePiece (and from onnxruntime-genai on the exported tokenizer.json).
/// Added tokens (added_tokens.json) are cut out of the text first; the dummy prefix goes to the first text segment only,
/// as hymba's tokenizer always did.
/// </summary>
internal sealed class SentencePieceBpe
{
    private const string Space = "\u2581";
    private const int Normal = 1, UserDefined = 4, Byte = 6;

    private readonly Dictionary<string, (int Id, float Score)> _mergeable = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _text = new(StringComparer.Ordinal);
    private readonly string[] _userDefined;
    private readonly int[] _bytes = new int[256];
    private readonly (string Token, int Id)[] _added;
    private readonly SentencePieceModel _model;
    private readonly bool _byteFallback;

    public SentencePieceBpe(SentencePieceModel model, IReadOnlyDictionary<string, int> addedTokens)
    {
        _model = model;
        Array.Fill(_bytes, -1);
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var p = model.Pieces[id];
            if (p.Type == Normal) _mergeable.TryAdd(p.Piece, (id, p.Score));
            if (p.Type is Normal or UserDefined) _text.TryAdd(p.Piece, id);
            if (p.Type == Byte && p.Piece.Length == 6 && p.Piece.StartsWith("<0x", StringComparison.Ordinal) && p.Piece[5] == '>'
                && byte.TryParse(p.Piece.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte b))
                _bytes[b] = id;
        }
        _userDefined = model.Pieces.Where(p => p.Type == UserDefined && p.Piece.Length > 0).Select(p => p.Piece)
            .OrderByDescending(p => p.Length).ThenBy(p => p, StringComparer.Ordinal).ToArray();
        _byteFallback = model.ByteFallback && _bytes.All(b => b >= 0);
        _added = addedTokens.Where(kv => kv.Key.Length > 0).Select(kv => (kv.Key, kv.Value))
            .OrderByDescending(t => t.Key.Length).ThenBy(t => t.Key, StringComparer.Ordinal).ToArray();
    }

    public bool IsSpecial(string token) => _added.Any(t => t.Token == token) || _userDefined.Contains(token, StringComparer.Ordinal);

    public List<int> Encode(string text)
    {
        var ids = new List<int>();
        bool first = true;
        int start = 0;
        for (int i = 0; i < text.Length;)
        {
            if (MatchAdded(text, i) is not { } added) { i++; continue; }
            if (i > start) { EncodeSegment(text[start..i], first, ids); first = false; }
            ids.Add(added.Id);
            i += added.Token.Length;
            start = i;
        }
        if (start < text.Length) EncodeSegment(text[start..], first, ids);
        return ids;
    }

    private (string Token, int Id)? MatchAdded(string text, int at)
    {
        foreach (var t in _added)
            if (string.CompareOrdinal(text, at, t.Token, 0, t.Token.Length) == 0) return t;
        return null;
    }

    private string Normalize(string text, bool dummyPrefix)
    {
        if (_model.RemoveExtraWhitespaces) text = string.Join(' ', text.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        if (text.Length == 0) return text;
        if (dummyPrefix && _model.AddDummyPrefix) text = " " + text;
        return _model.EscapeWhitespaces ? text.Replace(" ", Space, StringComparison.Ordinal) : text;
    }

    private void EncodeSegment(string segment, bool first, List<int> ids)
    {
        string normalized = Normalize(segment, first);
        if (normalized.Length == 0) return;

        // Symbols as a linked list over the text: user-defined pieces whole, otherwise one code point each.
        var symbols = new List<(int Start, int Length)>();
        for (int i = 0; i < normalized.Length;)
        {
            int size = _userDefined.FirstOrDefault(u => string.CompareOrdinal(normalized, i, u, 0, u.Length) == 0)?.Length
                ?? (char.IsSurrogatePair(normalized, i) ? 2 : 1);
            symbols.Add((i, size));
            i += size;
        }
        int n = symbols.Count;
        var start = symbols.Select(s => s.Start).ToArray();
        var length = symbols.Select(s => s.Length).ToArray();
        var prev = Enumerable.Range(-1, n).ToArray();
        var next = Enumerable.Range(1, n).Select(x => x < n ? x : -1).ToArray();

        // SentencePiece's agenda: the highest score first, then the leftmost left symbol.
        var agenda = new PriorityQueue<(int Left, int Right, int MergedLength), (float, int)>(
            Comparer<(float Score, int Left)>.Create((a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left)));
        var mergeable = _mergeable.GetAlternateLookup<ReadOnlySpan<char>>();
        void Consider(int left, int right)
        {
            if (left < 0 || right < 0) return;
            int merged = length[left] + length[right];
            if (mergeable.TryGetValue(normalized.AsSpan(start[left], merged), out var piece))
                agenda.Enqueue((left, right, merged), (piece.Score, left));
        }
        for (int i = 0; i + 1 < n; i++) Consider(i, i + 1);
        int popped = 0;
        while (agenda.TryDequeue(out var pair, out _))
        {
            // A book-length text is one segment (seconds of merging): an interrupt is honoured within it.
            if ((++popped & 0xFFFF) == 0) Common.Interruption.ThrowIfRequested();
            // A pair whose symbols changed since it was queued is stale.
            if (length[pair.Left] == 0 || length[pair.Right] == 0 || next[pair.Left] != pair.Right || length[pair.Left] + length[pair.Right] != pair.MergedLength) continue;
            length[pair.Left] = pair.MergedLength;
            length[pair.Right] = 0;
            next[pair.Left] = next[pair.Right];
            if (next[pair.Right] >= 0) prev[next[pair.Right]] = pair.Left;
            Consider(prev[pair.Left], pair.Left);
            Consider(pair.Left, next[pair.Left]);
        }

        // Unknown symbols: their UTF-8 bytes' pieces, or one <unk> for a run of them (SentencePiece merges such runs).
        bool previousUnknown = false;
        var text = _text.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int i = 0; i >= 0; i = next[i])
        {
            var symbol = normalized.AsSpan(start[i], length[i]);
            bool unknown = !text.TryGetValue(symbol, out int id);
            if (!unknown) ids.Add(id);
            else if (_byteFallback) foreach (byte b in Encoding.UTF8.GetBytes(symbol.ToString())) ids.Add(_bytes[b]);
            else if (!previousUnknown) ids.Add(_model.UnknownId);
            previousUnknown = unknown;
        }
    }
}
