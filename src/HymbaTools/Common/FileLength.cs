namespace HymbaTools.Common;

/// <summary>
/// The length of the file a path leads to. FileInfo.Length of a symbolic link is the length of the link itself (the
/// name it points at), and every file of a HuggingFace cache snapshot is a symlink into blobs/: readers size what they
/// map or read through here, which asks the opened file.
/// </summary>
internal static class FileLength
{
    public static long Of(string path)
    {
        using var handle = File.OpenHandle(path);
        return RandomAccess.GetLength(handle);
    }
}
