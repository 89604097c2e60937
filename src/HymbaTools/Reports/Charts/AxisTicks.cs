using System.Globalization;

namespace HymbaTools.Reports.Charts;

/// <summary>Tick positions for chart axes: round steps on linear axes, whole decades on log axes.</summary>
internal static class AxisTicks
{
    /// <summary>
    /// A range widened to round numbers and its ticks, with steps of 1, 2 or 5 times a power of ten: the smallest
    /// step that keeps at most <paramref name="maxTicks"/> ticks.
    /// </summary>
    public static (double Min, double Max, double Step, IReadOnlyList<double> Ticks) Linear(double min, double max, int maxTicks)
    {
        if (!(max > min))
        {
            double pad = Math.Abs(min) > 0 ? Math.Abs(min) * 0.1 : 1;
            (min, max) = (min - pad, max + pad);
        }
        double raw = (max - min) / Math.Max(1, maxTicks - 1);
        double magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1.0, 2, 5, 10 }.Select(f => f * magnitude).First(s => s >= raw * (1 - 1e-9));
        double lo = Math.Floor(min / step + 1e-9) * step, hi = Math.Ceiling(max / step - 1e-9) * step;
        var ticks = new List<double>();
        for (int i = 0; lo + i * step <= hi + step * 1e-9; i++) ticks.Add(Math.Round(lo + i * step, 12));
        return (lo, hi, step, ticks);
    }

    /// <summary>A tick label with as many decimals as the step needs.</summary>
    public static string Format(double value, double step)
    {
        int decimals = Math.Max(0, (int)-Math.Floor(Math.Log10(step) + 1e-9));
        string text = value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        return text == "-" + 0.0.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) ? text[1..] : text;
    }

    /// <summary>The whole decades (as exponents) that enclose [min, max] of positive values, at least one decade apart.</summary>
    public static (int Low, int High) Decades(double minPositive, double maxPositive)
    {
        int low = (int)Math.Floor(Math.Log10(minPositive) + 1e-9), high = (int)Math.Ceiling(Math.Log10(maxPositive) - 1e-9);
        if (high <= low) high = low + 1;
        return (low, high);
    }

    /// <summary>"10" with the exponent in Unicode superscripts (10⁻³): one text node, legible in print.</summary>
    public static string DecadeLabel(int exponent)
    {
        const string superscripts = "⁰¹²³⁴⁵⁶⁷⁸⁹";
        string digits = string.Concat(Math.Abs(exponent).ToString(CultureInfo.InvariantCulture).Select(d => superscripts[d - '0']));
        return exponent == 0 ? "1" : "10" + (exponent < 0 ? "⁻" : "") + digits;
    }
}
