using System.Buffers;
using System.Text;
using System.Text.Unicode;
using HymbaTools.Common;

namespace HymbaTools.Text;

/// <summary>
/// The one reader of text files given to a command (--text, calibration and training text): UTF-8 unless an encoding
/// is named, and invalid UTF-8 is an input error at its byte offset. A Latin-1 file read as UTF-8 would otherwise
/// turn every accented letter into U+FFFD and be scored silently (its perplexity measured a third higher).
/// </summary>
public static class TextFile
{
    /// <summary>The names --text-encoding takes (case-insensitive).</summary>
    private static readonly Dictionary<string, Func<Encoding>> Encodings = new(StringComparer.OrdinalIgnoreCase)
    {
        ["utf-8"] = () => new UTF8Encoding(false, true),
        ["utf8"] = () => new UTF8Encoding(false, true),
        ["latin1"] = () => Encoding.Latin1,
        ["iso-8859-1"] = () => Encoding.Latin1,
        ["utf-16"] = () => new UnicodeEncoding(false, true, true),
        ["utf-16le"] = () => new UnicodeEncoding(false, true, true),
        ["utf-16be"] = () => new UnicodeEncoding(true, true, true),
        ["ascii"] = () => Encoding.GetEncoding("us-ascii", EncoderFallback.ExceptionFallback, DecoderFallback.ExceptionFallback),
    };

    public static string EncodingNames => "utf-8, latin1, utf-16, utf-16le, utf-16be, ascii";

    /// <summary>Checks an encoding name (before any work starts).</summary>
    public static void CheckEncoding(string? name, string option)
    {
        if (name is not null && !Encodings.ContainsKey(name))
            throw new InvalidRequestException(option, $"'{name}' (expected one of {EncodingNames})");
    }

    /// <summary>The text of <paramref name="path"/>; <paramref name="option"/> names where it was given, for errors.</summary>
    public static string Read(string path, string option, string? encodingName = null, string encodingOption = "--text-encoding")
    {
        CheckEncoding(encodingName, encodingOption);
        if (!File.Exists(path)) throw new InvalidRequestException(option, $"{path}: file not found");
        byte[] bytes = File.ReadAllBytes(path);
        if (encodingName is not null && !IsUtf8(encodingName))
        {
            try
            {
                var encoding = Encodings[encodingName]();
                int bom = encoding.Preamble.Length > 0 && bytes.AsSpan().StartsWith(encoding.Preamble) ? encoding.Preamble.Length : 0;
                if (encodingName.Equals("utf-16", StringComparison.OrdinalIgnoreCase) && bytes.AsSpan().StartsWith<byte>([0xFE, 0xFF]))
                    return new UnicodeEncoding(true, true, true).GetString(bytes, 2, bytes.Length - 2);
                return encoding.GetString(bytes, bom, bytes.Length - bom);
            }
            catch (DecoderFallbackException e)
            {
                throw new InvalidRequestException(option, $"{path}: not valid {encodingName} at byte offset {e.Index} (expected text in the encoding --text-encoding names)");
            }
        }
        return DecodeUtf8(bytes, path, option);
    }

    private static bool IsUtf8(string name) => name.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || name.Equals("utf8", StringComparison.OrdinalIgnoreCase);

    private static string DecodeUtf8(byte[] bytes, string path, string option)
    {
        ReadOnlySpan<byte> utf8BOM = [0xEF, 0xBB, 0xBF];
        int start = bytes.AsSpan().StartsWith(utf8BOM) ? 3 : 0;
        var chars = new char[bytes.Length];
        var status = Utf8.ToUtf16(bytes.AsSpan(start), chars, out int read, out int written, replaceInvalidSequences: false);
        if (status == OperationStatus.Done) return new string(chars, 0, written);
        long offset = start + read;
        string hint = bytes.AsSpan().StartsWith<byte>([0xFF, 0xFE]) || bytes.AsSpan().StartsWith<byte>([0xFE, 0xFF])
            ? "it starts with a UTF-16 byte order mark: give --text-encoding utf-16"
            : $"expected UTF-8; give --text-encoding {EncodingNames.Replace("utf-8, ", "", StringComparison.Ordinal).Replace(", ", "|", StringComparison.Ordinal)} for another encoding";
        throw new InvalidRequestException(option, $"{path}: invalid UTF-8 at byte offset {offset} (byte 0x{bytes[offset]:X2}; {hint})");
    }
}
