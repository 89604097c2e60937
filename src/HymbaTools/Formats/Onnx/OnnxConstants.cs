namespace HymbaTools.Formats.Onnx;

/// <summary>Versions and domains for hand-built ONNX models (ORT 1.31.1 accepts IR 7..13 with opset 13..26).</summary>
internal static class OnnxConstants
{
    public const long IrVersion = 10;
    public const long Opset = 21;
    public const string MicrosoftDomain = "com.microsoft";
    public const long MicrosoftOpset = 1;
}
